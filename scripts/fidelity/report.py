#!/usr/bin/env python3
"""The fidelity benchmark's table: IFEval and held-out accuracies of the base, SPaR and
independent-pairs actors, exact McNemar tests on prompt-level loose between them, and what
the training data looked like. Standard library only.

usage: report.py OUT_DIR   (the folder scripts/bench-fidelity.sh wrote; writes OUT_DIR/report.json)
"""
import json
import math
import os
import sys

MODELS = ["base", "spar", "repair", "independent"]
BENCHMARKS = ["ifeval", "ifbench", "heldout"]
COMPARISONS = [
    ("spar", "base"), ("repair", "base"), ("independent", "base"),
    ("spar", "independent"), ("repair", "independent"), ("repair", "spar"),
]


def read_jsonl(path):
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def accuracies(folder):
    """The four IFEval accuracies and per-prompt loose results of one evaluation folder."""
    out, per_prompt = {}, None
    for mode in ["strict", "loose"]:
        rows = read_jsonl(os.path.join(folder, f"eval_results_{mode}.jsonl"))
        prompts = [r["follow_all_instructions"] for r in rows]
        instructions = [x for r in rows for x in r["follow_instruction_list"]]
        out[f"prompt_{mode}"] = sum(prompts) / len(prompts)
        out[f"instruction_{mode}"] = sum(instructions) / len(instructions)
        if mode == "loose":
            per_prompt = prompts
    out["n"] = len(per_prompt)
    return out, per_prompt


def mcnemar_exact(a, b):
    """Two-sided exact McNemar p-value for paired booleans a, b (binomial test on discordant pairs)."""
    only_a = sum(1 for x, y in zip(a, b) if x and not y)
    only_b = sum(1 for x, y in zip(a, b) if y and not x)
    n = only_a + only_b
    if n == 0:
        return 1.0, only_a, only_b
    k = min(only_a, only_b)
    tail = sum(math.comb(n, i) for i in range(k + 1)) / 2**n
    return min(1.0, 2 * tail), only_a, only_b


def stage_stats(run_dir):
    """Per-stage seconds and the pair/sample figures from a run's metrics.jsonl."""
    stats = {"seconds": {}}
    path = os.path.join(run_dir, "metrics.jsonl")
    if not os.path.exists(path):
        return stats
    for line in read_jsonl(path):
        stage, s = line["stage"], line["stats"]
        key = stage if line["iteration"] else "baseline-" + stage
        stats["seconds"][key] = round(line["seconds"], 1)
        if stage == "samples":
            stats["samples"] = s.get("samples")
            stats["truncated_share"] = s.get("truncated_share")
        if stage == "pairs":
            stats["pairs_built"] = s.get("pairs_built")
            stats["pairs_kept"] = s.get("pairs_kept")
            stats["dropped"] = s.get("dropped")
            stats["similarity_kept"] = s.get("similarity_kept")
            stats["similarity_independent"] = s.get("similarity_independent")
        if stage == "search" and "skipped" not in s:
            stats["trees"] = s.get("negatives_searched")
            stats["trees_solved"] = s.get("trees_solved")
            stats["repaired_children"] = s.get("repaired_children")
            stats["truncated_negatives_not_searched"] = s.get("truncated_negatives_not_searched")
        if stage == "dpo" and "steps" in s:
            stats["dpo_steps"] = s["steps"]
            stats["dpo_last"] = s.get("last")
    return stats


def main():
    out = sys.argv[1]
    report = {"models": {}, "comparisons": [], "runs": {}}
    per_prompt = {}
    for bench in BENCHMARKS:
        for model in MODELS:
            folder = os.path.join(out, "eval", f"{bench}-{model}")
            if not os.path.exists(os.path.join(folder, "eval_results_loose.jsonl")):
                continue
            acc, loose = accuracies(folder)
            report["models"].setdefault(model, {})[bench] = acc
            per_prompt[(bench, model)] = loose
    for bench in BENCHMARKS:
        for a, b in COMPARISONS:
            if (bench, a) not in per_prompt or (bench, b) not in per_prompt:
                continue
            p, only_a, only_b = mcnemar_exact(per_prompt[(bench, a)], per_prompt[(bench, b)])
            delta = (
                report["models"][a][bench]["prompt_loose"] - report["models"][b][bench]["prompt_loose"]
            )
            report["comparisons"].append({
                "benchmark": bench, "model": a, "versus": b, "metric": "prompt_loose",
                "delta": delta, "p_value": p, "only_model_passes": only_a, "only_versus_passes": only_b,
            })
    for run in ["spar", "repair", "independent"]:
        report["runs"][run] = stage_stats(os.path.join(out, f"run-{run}"))
    with open(os.path.join(out, "report.json"), "w") as f:
        json.dump(report, f, indent=2)

    print(f"{'benchmark':<9} {'model':<12} {'n':>4} {'P(S)':>6} {'I(S)':>6} {'P(L)':>6} {'I(L)':>6}")
    for bench in BENCHMARKS:
        for model in MODELS:
            acc = report["models"].get(model, {}).get(bench)
            if acc:
                print(f"{bench:<9} {model:<12} {acc['n']:>4} " + " ".join(
                    f"{100 * acc[k]:>6.1f}" for k in
                    ["prompt_strict", "instruction_strict", "prompt_loose", "instruction_loose"]))
    print()
    print(f"{'benchmark':<9} {'comparison (P(L))':<26} {'delta':>7} {'wins/losses':>12} {'p (McNemar)':>12}")
    for c in report["comparisons"]:
        print(f"{c['benchmark']:<9} {c['model'] + ' vs ' + c['versus']:<26} "
              f"{100 * c['delta']:>+7.1f} {str(c['only_model_passes']) + '/' + str(c['only_versus_passes']):>12} "
              f"{c['p_value']:>12.3f}")
    print()
    for run, s in report["runs"].items():
        print(f"{run}: samples {s.get('samples')}, truncated share {s.get('truncated_share')}, "
              f"trees {s.get('trees')} (solved {s.get('trees_solved')}), pairs kept {s.get('pairs_kept')} "
              f"of {s.get('pairs_built')}, dropped {s.get('dropped')}, similarity kept "
              f"{s.get('similarity_kept')} / independent {s.get('similarity_independent')}")
        print(f"  seconds per stage: {s.get('seconds')}")
    print(f"\nwritten: {os.path.join(out, 'report.json')}")


if __name__ == "__main__":
    main()
