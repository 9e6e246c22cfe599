"""Load a checkpoint written by spar-host with transformers and compare its logits with
spar-host's on the same token ids. usage: check_transformers.py CHECKPOINT LOGITS.json"""
import json
import sys

import torch
from safetensors import safe_open
from transformers import AutoModelForCausalLM

checkpoint, logits_path = sys.argv[1:3]
ours = json.load(open(logits_path))
with safe_open(f"{checkpoint}/model.safetensors", "pt") as f:
    assert f.metadata().get("format") == "pt", f.metadata()
model = AutoModelForCausalLM.from_pretrained(checkpoint, dtype=torch.float32).eval()
with torch.no_grad():
    theirs = model(torch.tensor([ours["ids"]])).logits[0]
diff = (theirs - torch.tensor(ours["logits"])).abs().max().item()
print(json.dumps({"checkpoint": checkpoint, "tokens": len(ours["ids"]), "max_abs_logit_diff": diff}))
sys.exit(0 if diff < 1e-3 else 1)
