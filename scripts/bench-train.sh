#!/usr/bin/env bash
# Whole DPO trainings side by side, at real lengths: `spar-host train dpo` and TRL's DPOTrainer
# (scripts/trainers/trl_dpo.py, the external-trainer hand-off) on the same pairs with the same
# settings (micro-batch 2 pairs, 1 epoch, beta 0.1, SFT weight 0.1, lr 5e-6, full f32), one
# after the other (two trainings at once would share the machine's memory and cores).
# Each trainer is timed as a process: load, tokenize, reference log-probs (ours computed cold,
# not from the cache), every step and the save. Prints the CPU, then per max length the pairs'
# token lengths, wall seconds, peak RSS and the ratio (> 1: spar-host faster).
# The pairs are synthetic text from a seeded generator (a speed and memory input, not training
# data): sequences fill 45-95% of the max length, one pair in ten overruns it (truncated).
# SIMD=avx2 caps both sides at AVX2, to measure an AVX2-only machine (scripts/simd-cap.sh).
#   HF=<HF model dir> TV=<venv with torch, transformers, trl, datasets> [SIMD=avx2] scripts/bench-train.sh [MAX_LENGTHS...]
set -euo pipefail
cd "$(dirname "$0")/.."
: "${HF:?set HF to an HF model directory (e.g. from peers/gguf_llama_to_hf.py)}"
: "${TV:?set TV to a virtualenv with torch, transformers, trl and datasets}"
lengths=("$@")
[ ${#lengths[@]} -gt 0 ] || lengths=(512 1024)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
source scripts/simd-cap.sh
export OMP_NUM_THREADS=$(nproc)
trl_version=$("$TV/bin/python" -c "import trl; print(trl.__version__)")
print_machine
echo "$(nproc) vCPUs, $(free -g | awk '/Mem:/{print $2}') GB"
printf '%-8s %-22s %-24s %8s %12s %9s\n' max_len trainer "tokens min/med/max" wall_s peak_rss_mb vs_trl
for max_len in "${lengths[@]}"; do
    pairs=$work/pairs-$max_len.jsonl
    python3 - "$max_len" "$pairs" <<'PY'
import json, random, sys
max_len, path = int(sys.argv[1]), sys.argv[2]
rng = random.Random(max_len)
words = ("the river valley snow village quiet morning light water stone over under through slowly "
         "carries shapes time years people walk across small old new bright cold warm field road "
         "house window smoke tree branch winter summer season change every because while after "
         "before and but so yet often always never sometimes a an of to in on at with from by "
         "describe story history careful simple clear answer question reason example detail").split()
def sentence():
    s = " ".join(rng.choice(words) for _ in range(rng.randint(8, 20)))
    return s[0].upper() + s[1:] + "."
with open(path, "w") as out:
    for i in range(19):
        # About 1.25 tokens per word with SmolLM2's tokenizer, after about 60 tokens of chat
        # template, prompt, title and P.S.; every tenth pair overruns.
        share = 1.15 if i % 10 == 9 else rng.uniform(0.45, 0.95)
        target_words = max(int((share * max_len - 60) / 1.25), 8)
        body, n = [], 0
        while n < target_words:
            paragraph = " ".join(sentence() for _ in range(rng.randint(2, 5)))
            body.append(paragraph)
            n += len(paragraph.split())
        rejected = "\n\n".join(body)
        chosen = "<<An Answer>>\n\n" + rejected + "\n\nP.S. I hope this helps."
        prompt = f"Write about the valley in winter, part {i + 1}. Wrap your title in double angular brackets and end with a P.S."
        out.write(json.dumps({"prompt": [{"role": "user", "content": prompt}],
                              "chosen": [{"role": "assistant", "content": chosen}],
                              "rejected": [{"role": "assistant", "content": rejected}]}) + "\n")
PY
    tokens=$("$TV/bin/python" - "$HF" "$pairs" <<'PY'
import json, statistics, sys
from transformers import AutoTokenizer
tok = AutoTokenizer.from_pretrained(sys.argv[1])
n = []
for line in open(sys.argv[2]):
    d = json.loads(line)
    text = tok.apply_chat_template(d["prompt"], tokenize=False, add_generation_prompt=True)
    p = len(tok(text, add_special_tokens=False)["input_ids"])
    for side in ("chosen", "rejected"):
        n.append(p + len(tok(d[side][0]["content"])["input_ids"]))
print(f"{min(n)}/{int(statistics.median(n))}/{max(n)}")
PY
)
    settings=(--micro-batch 2 --grad-accum 1 --epochs 1 --lr 5e-6 --max-length "$max_len" --seed 0)
    SPAR_CACHE_DIR=$work/cache /usr/bin/time -v "$BIN" train dpo --model "$HF" --pairs "$pairs" \
        --output "$work/ours-$max_len" "${settings[@]}" >"$work/ours.log" 2>"$work/ours.time" \
        || { tail -n 20 "$work/ours.time"; exit 1; }
    env "${TORCH_ENV[@]}" /usr/bin/time -v "$TV/bin/python" scripts/trainers/trl_dpo.py --model "$HF" --data "$pairs" \
        --output "$work/trl-$max_len" --beta 0.1 --sft-weight 0.1 --loss-type sigmoid \
        --warmup-ratio 0.1 "${settings[@]}" >"$work/trl.log" 2>"$work/trl.time" \
        || { tail -n 20 "$work/trl.time"; exit 1; }
    python3 - "$max_len" "$tokens" "$work/ours.time" "$work/trl.time" "$trl_version" <<'PY'
import re, sys
max_len, tokens, ours, trl, trl_version = sys.argv[1:6]
def measure(path):
    text = open(path).read()
    h, m, s = (["0"] + re.search(r"Elapsed \(wall clock\) time.*: (\S+)", text).group(1).split(":"))[-3:]
    wall = int(h) * 3600 + int(m) * 60 + float(s)
    rss = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", text).group(1)) / 1024
    return wall, rss
(ow, orss), (tw, trss) = measure(ours), measure(trl)
# Our stderr (with time's report) holds the data report: how many pairs max_len cut.
truncated = re.search(r'"truncated":(\d+)', open(ours).read())
print(f"{max_len:<8} {'TRL ' + trl_version:<22} {tokens:<24} {tw:8.1f} {trss:12.0f} {1:9.2f}")
print(f"{max_len:<8} {'spar-host':<22} {tokens:<24} {ow:8.1f} {orss:12.0f} {tw / ow:9.2f}"
      + (f"   (pairs cut by max_len: {truncated.group(1)})" if truncated else ""))
PY
done
