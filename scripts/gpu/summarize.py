"""The GPU check's table from its log folder (scripts/gpu-check.sh)."""
import glob
import json
import os
import sys

out = sys.argv[1]


def jsons(name):
    path = os.path.join(out, name + ".log")
    if not os.path.exists(path):
        return []
    rows = []
    for line in open(path, errors="replace"):
        line = line.strip()
        if line.startswith("{"):
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError:
                pass
    return rows


def last(name):
    rows = jsons(name)
    return rows[-1] if rows else {}


def torch_figs(name):
    return {r["metric"]: r["median"] for r in jsons(name) if "metric" in r}


def peak_mem(name):
    path = os.path.join(out, name + ".mem")
    vals = [float(v) for v in open(path).read().split() if v.replace(".", "").isdigit()] if os.path.exists(path) else []
    return max(vals) if vals else None


def fmt(x, digits=1):
    return "n/a" if x is None else f"{x:.{digits}f}"


card = "unknown card"
smi = os.path.join(out, "nvidia-smi.txt")
for r in jsons("torch-gen-bf16"):
    card = r.get("card", card) if "torch" in r else card
print(f"GPU check, {card}\n")
print("| parity (tiny model, device vs CPU f32) | f32 | bf16 |")
print("|---|---|---|")
p32, p16 = last("parity-f32"), last("parity-bf16")
for key in ("logits_max_abs_diff", "greedy_tokens_agreeing", "dpo_loss_device", "dpo_updated_weights_max_abs_diff"):
    print(f"| {key} | {p32.get(key, 'n/a')} | {p16.get(key, 'n/a')} |")
print(f"| (logits_max_abs {p32.get('logits_max_abs', 'n/a')}, CPU DPO loss {p32.get('dpo_loss_cpu', 'n/a')}, lr 1e-3) | | |")
print()
print("| figure (SmolLM2-135M shape, random weights) | dtype | spar-host | PyTorch | ratio |")
print("|---|---|---|---|---|")
for dtype in ("bf16", "f32"):
    ours, theirs = last(f"gen-{dtype}"), torch_figs(f"torch-gen-{dtype}")
    for key in sorted(k for k in ours if k.endswith("_tok_s") and (k.startswith("gen1_") or "generated" in k)):
        a, b = ours.get(key), theirs.get(key)
        ratio = f"{a / b:.2f}x" if a and b else "n/a"
        print(f"| {key} | {dtype} | {fmt(a)} | {fmt(b)} | {ratio} |")
    d, t = last(f"dpo-{dtype}"), torch_figs(f"torch-dpo-{dtype}")
    a, b = d.get("dpo_tok_s"), t.get("dpo_tok_s")
    ratio = f"{a / b:.2f}x" if a and b else "n/a"
    print(f"| DPO step 2x256, policy tok/s | {dtype} | {fmt(a)} | {fmt(b)} | {ratio} |")
    lora = last(f"dpo-lora-{dtype}").get("dpo_tok_s")
    print(f"| DPO step 2x256 with LoRA r16 (all linear), policy tok/s | {dtype} | {fmt(lora)} | | |")
    print(f"| peak GPU memory, MiB (nvidia-smi, whole card) gen / DPO | {dtype} | {fmt(peak_mem(f'gen-{dtype}'), 0)} / {fmt(peak_mem(f'dpo-{dtype}'), 0)} (LoRA {fmt(peak_mem(f'dpo-lora-{dtype}'), 0)}) | {fmt(peak_mem(f'torch-gen-{dtype}'), 0)} / {fmt(peak_mem(f'torch-dpo-{dtype}'), 0)} | |")
print()
print("steps and exit codes:", open(os.path.join(out, "steps.txt")).read() if os.path.exists(os.path.join(out, "steps.txt")) else "none")
