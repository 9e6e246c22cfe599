#!/usr/bin/env python3
"""IFBench's own evaluation (its `evaluation_lib`, strict then loose, as `run_eval.py` runs them)
on INPUT and RESPONSES, writing OUT/eval_results_{strict,loose}.jsonl.

usage: IFBENCH_SRC=/path/to/IFBench reference.py INPUT RESPONSES OUT
"""
import os
import sys

sys.path.insert(0, os.environ["IFBENCH_SRC"])
import evaluation_lib  # noqa: E402

inputs = evaluation_lib.read_prompt_list(sys.argv[1])
prompt_to_response = evaluation_lib.read_prompt_to_response_dict(sys.argv[2])
for name, check in [("strict", evaluation_lib.test_instruction_following_strict),
                    ("loose", evaluation_lib.test_instruction_following_loose)]:
    outputs = [check(inp, prompt_to_response) for inp in inputs]
    evaluation_lib.write_outputs(os.path.join(sys.argv[3], f"eval_results_{name}.jsonl"), outputs)
