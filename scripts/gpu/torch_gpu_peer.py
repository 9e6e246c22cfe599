"""PyTorch + transformers peer on a GPU, measured the way `spar-host bench generate|dpo` measures
(the CPU peer's method, shared/bench/peers/torch_peer.py): decode tok/s = 127 / (t(128) - t(1))
at batch 1 (greedy), generated tok/s = B * 128 / t(128) at batch B (T 0.9, top-p 0.9), EOS
masked; one DPO step on 2 x 256 seeded random tokens with a frozen reference and AdamW.

usage: torch_gpu_peer.py HF_DIR {gen,dpo} [--batches 8,64] [--dtype bf16|f32] [--runs 3] [--device cuda]
Prints one JSON object per figure.
"""
import argparse
import json
import statistics
import time

import torch
import torch.nn.functional as F
from transformers import AutoModelForCausalLM, AutoTokenizer

SYSTEM = "You are a helpful AI assistant named SmolLM, trained by Hugging Face"
HAIKU = "Write a haiku about the sea in lowercase letters only."
PROMPTS8 = [
    "Write a haiku about the sea in lowercase letters only.",
    "Give three tips for learning to cook.",
    "Explain what a rainbow is to a child.",
    "List five fruits that are red.",
    "Write a short poem about autumn leaves.",
    "What is the capital of France? Answer in one sentence.",
    "Describe a cat in two sentences.",
    "Suggest a name for a friendly robot.",
]
N_NEW = 128  # --new-tokens


def sync(device):
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def timed(fn, device):
    sync(device)
    t0 = time.perf_counter()
    out = fn()
    sync(device)
    return time.perf_counter() - t0, out


def emit(metric, xs, **extra):
    print(json.dumps({"metric": metric, "median": statistics.median(xs), "runs": [round(x, 4) for x in xs], **extra}),
          flush=True)


def peak_mb(device):
    return torch.cuda.max_memory_allocated() / 2**20 if device.startswith("cuda") else None


def load(d, dtype, device):
    m = AutoModelForCausalLM.from_pretrained(d, dtype=dtype).to(device)
    gen = m.generation_config
    if gen is not None and (gen.temperature is not None or gen.top_p is not None):
        gen.do_sample = True
    return m


def bench_gen(d, batches, dtype, runs, device):
    tok = AutoTokenizer.from_pretrained(d)
    tok.padding_side = "left"
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    model = load(d, dtype, device).eval()

    def chat(p):
        return tok.apply_chat_template([{"role": "user", "content": p}], add_generation_prompt=True, tokenize=False)

    def run(prompts, n, sample):
        enc = tok([chat(p) for p in prompts], return_tensors="pt", padding=True, add_special_tokens=False).to(device)
        kw = dict(do_sample=True, temperature=0.9, top_p=0.9, top_k=0) if sample else dict(do_sample=False)
        with torch.inference_mode():
            return model.generate(**enc, max_new_tokens=n, min_new_tokens=n, pad_token_id=tok.pad_token_id, **kw)

    run([HAIKU], 1, False), run([HAIKU], N_NEW, False)
    decs = []
    for _ in range(runs):
        t1, _ = timed(lambda: run([HAIKU], 1, False), device)
        tn, _ = timed(lambda: run([HAIKU], N_NEW, False), device)
        decs.append((N_NEW - 1) / (tn - t1))
    emit("gen1_decode_tok_s", decs)
    for b in batches:
        prompts = [PROMPTS8[i % 8] for i in range(b)]
        torch.manual_seed(0)
        run(prompts, 1, True), run(prompts, N_NEW, True)
        gens = []
        for _ in range(runs):
            tn, _ = timed(lambda: run(prompts, N_NEW, True), device)
            gens.append(b * N_NEW / tn)
        emit(f"gen{b}_generated_tok_s", gens, batch=b)
    print(json.dumps({"metric": "gen_peak_mem_mb", "median": peak_mb(device)}), flush=True)


def seq_logp(model, ids, prompt_len):
    logits = model(input_ids=ids, use_cache=False).logits[:, :-1]
    lp = torch.log_softmax(logits.float(), dim=-1)
    return lp.gather(-1, ids[:, 1:].unsqueeze(-1)).squeeze(-1)[:, prompt_len - 1:].sum(-1)


def bench_dpo(d, dtype, runs, device, seq=256, prompt_len=64, beta=0.1):
    # bf16: autocast over f32 master weights, as spar-host keeps f32 weights and AdamW state.
    policy = load(d, torch.float32, device).train()
    ref = load(d, dtype, device).eval().requires_grad_(False)
    opt = torch.optim.AdamW(policy.parameters(), lr=1e-6)
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(3, policy.config.vocab_size, (2, seq), generator=g)
    ids[1, :prompt_len] = ids[0, :prompt_len]
    ids = ids.to(device)
    autocast = dtype == torch.bfloat16 and device.startswith("cuda")

    def step():
        opt.zero_grad(set_to_none=True)
        with torch.no_grad():
            r = seq_logp(ref, ids, prompt_len)
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=autocast):
            p = seq_logp(policy, ids, prompt_len)
        loss = -F.logsigmoid(beta * ((p[0] - r[0]) - (p[1] - r[1])))
        loss.backward()
        opt.step()
        return float(loss)

    step()
    ts = [timed(step, device)[0] for _ in range(runs)]
    emit("dpo_step_s", ts)
    emit("dpo_tok_s", [2 * seq / t for t in ts])
    print(json.dumps({"metric": "dpo_peak_mem_mb", "median": peak_mb(device)}), flush=True)


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("hf_dir")
    ap.add_argument("bench", choices=["gen", "dpo"])
    ap.add_argument("--batches", default="8,64")
    ap.add_argument("--dtype", default="bf16", choices=["bf16", "f32"])
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--new-tokens", type=int, default=128)
    a = ap.parse_args()
    N_NEW = a.new_tokens
    dtype = torch.bfloat16 if a.dtype == "bf16" else torch.float32
    info = {"torch": torch.__version__, "device": a.device, "dtype": a.dtype}
    if a.device.startswith("cuda"):
        info["card"] = torch.cuda.get_device_name()
    print(json.dumps(info), flush=True)
    if a.bench == "gen":
        bench_gen(a.hf_dir, [int(b) for b in a.batches.split(",") if b], dtype, a.runs, a.device)
    else:
        bench_dpo(a.hf_dir, dtype, a.runs, a.device)
