"""PEFT's view of a spar-host LoRA: the adapter (`CHECKPOINT/adapter`) loaded onto BASE with
PeftModel.from_pretrained must give the logits spar-host computes from its merged CHECKPOINT, and
the merged checkpoint must load in transformers with the same logits.
usage: check_peft.py BASE CHECKPOINT LOGITS.json"""
import json
import sys

import torch
from peft import PeftModel
from transformers import AutoModelForCausalLM

base_dir, checkpoint, logits_path = sys.argv[1:4]
ours = json.load(open(logits_path))
ids = torch.tensor([ours["ids"]])
expected = torch.tensor(ours["logits"])
base = AutoModelForCausalLM.from_pretrained(base_dir, dtype=torch.float32).eval()
with torch.no_grad():
    base_diff = (base(ids).logits[0] - expected).abs().max().item()
adapted = PeftModel.from_pretrained(base, f"{checkpoint}/adapter").eval()
with torch.no_grad():
    peft_diff = (adapted(ids).logits[0] - expected).abs().max().item()
merged = AutoModelForCausalLM.from_pretrained(checkpoint, dtype=torch.float32).eval()
with torch.no_grad():
    merged_diff = (merged(ids).logits[0] - expected).abs().max().item()
print(json.dumps({
    "tokens": len(ours["ids"]),
    "peft_adapter_on_base_max_abs_logit_diff": peft_diff,
    "transformers_merged_max_abs_logit_diff": merged_diff,
    "base_without_adapter_max_abs_logit_diff": base_diff,
}))
# The adapter must matter (the base alone differs) and PEFT must reproduce it.
sys.exit(0 if peft_diff < 1e-3 and merged_diff < 1e-3 and base_diff > 1e-2 else 1)
