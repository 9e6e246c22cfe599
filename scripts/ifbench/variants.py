#!/usr/bin/env python3
"""Stress inputs for the IFBench parity check: IFBench's sample responses and transformations
of them (case, punctuation, line structure, emoji, quotes, truncation), each scored against
every instruction of its prompt. Each variant is its own prompt ("<prompt> [variant k]"): the
checkers never read the prompt, so labels depend on the response alone.

usage: variants.py IFBench_test.jsonl sample_output.jsonl OUT_DIR
Writes OUT_DIR/input.jsonl and OUT_DIR/responses.jsonl. `words:start_verb` (POS tagger) is left
out of the instruction lists.
"""
import json
import random
import string
import sys

inputs = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
responses = {}
for l in open(sys.argv[2]):
    if l.strip():
        r = json.loads(l)
        responses[r["prompt"].strip()] = r["response"]

rng = random.Random(7)
EMOJI = ["😀", "🚀", "✨", "©", "👍🏽", "🇫🇷"]


def variants(text):
    words = text.split()
    lines = text.split("\n")
    yield text
    yield text.lower()
    yield text.upper()
    yield text.title()
    yield text.translate(str.maketrans("", "", string.punctuation))
    yield "\n".join(reversed(lines))
    yield text[: len(text) // 2]
    yield text[len(text) // 3:]
    yield "\n".join(words)
    yield " ".join(words[::-1])
    yield text.replace(". ", f" {rng.choice(EMOJI)}. ").replace("\n", f" {rng.choice(EMOJI)}\n")
    yield text.replace('"', "'").replace("'", '"', 3)
    yield "\n".join("  " * i + line for i, line in enumerate(lines))
    yield text.replace(".", "?!", 2).replace(",", ";", 3)
    yield "* " + text.replace("\n", "\n* - ")
    yield text.replace("\n\n", "\n \n\n")
    yield ", ".join(w.strip(string.punctuation) for w in words[:30])
    yield "<i>" + text.replace("\n", "</i>\n", 1) if "\n" in text else "<em>" + text + "</em> ok"


out = sys.argv[3]
with open(f"{out}/input.jsonl", "w") as fi, open(f"{out}/responses.jsonl", "w") as fr:
    n = 0
    for inp in inputs:
        response = responses.get(inp["prompt"].strip())
        if response is None:
            continue
        keep = [i for i, id in enumerate(inp["instruction_id_list"]) if id != "words:start_verb"]
        if not keep:
            continue
        for k, text in enumerate(variants(response)):
            prompt = f"{inp['prompt']} [variant {k}]"
            fi.write(json.dumps({
                "key": f"{inp['key']}.{k}",
                "prompt": prompt,
                "instruction_id_list": [inp["instruction_id_list"][i] for i in keep],
                "kwargs": [inp["kwargs"][i] for i in keep],
            }) + "\n")
            fr.write(json.dumps({"prompt": prompt, "response": text}) + "\n")
            n += 1
print(n)
