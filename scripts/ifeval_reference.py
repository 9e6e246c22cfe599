"""The Python reference for `spar-host eval ifeval`: lm-eval's IFEval checker (the official
Google code, packaged) run over an input file and a responses file, writing the same two result
files. Used by scripts/bench-ifeval.sh as the peer. Needs `lm-eval[ifeval]==0.4.13` and
NLTK_DATA pointing at punkt_tab data."""

import dataclasses
import json
import sys
import time

started = time.perf_counter()
from lm_eval.tasks.ifeval import utils  # noqa: E402

input_path, responses_path, out_dir = sys.argv[1:4]
inputs = [json.loads(line) for line in open(input_path, encoding="utf-8") if line.strip()]
prompt_to_response = {}
for line in open(responses_path, encoding="utf-8"):
    if line.strip():
        r = json.loads(line)
        prompt_to_response[r["prompt"]] = r["response"]

for name, test in (("strict", utils.test_instruction_following_strict),
                   ("loose", utils.test_instruction_following_loose)):
    with open(f"{out_dir}/eval_results_{name}.jsonl", "w", encoding="utf-8") as out:
        for d in inputs:
            inp = utils.InputExample(key=d["key"], instruction_id_list=d["instruction_id_list"],
                                     prompt=d["prompt"], kwargs=d["kwargs"])
            o = test(inp, prompt_to_response[d["prompt"]])
            row = {"follow_all_instructions": o.follow_all_instructions,
                   "follow_instruction_list": o.follow_instruction_list,
                   "instruction_id_list": o.instruction_id_list,
                   "prompt": o.prompt, "response": o.response}
            out.write(json.dumps(row) + "\n")
print(f"python reference: {time.perf_counter() - started:.2f} s in-process (imports included)")
