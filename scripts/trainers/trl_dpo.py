"""DPO with TRL on a stage handed over by `spar-host run` (dpo.trainer = "external", format "trl").

The [dpo.external] command that maps every spar-host setting (see docs/external-trainers.md):

  python scripts/trainers/trl_dpo.py --model {model} --data {data} --output {output}
      --beta {beta} --sft-weight {sft_weight} --loss-type {loss_type} --lr {lr} --epochs {epochs}
      --micro-batch {micro_batch} --grad-accum {grad_accum} --max-length {max_length}
      --warmup-ratio {warmup_ratio} --seed {seed}

For several GPUs, start it with `accelerate launch` (and a DeepSpeed config) instead of `python`.
Tested with trl 1.16 / transformers 5.24 / torch 2.15 (CPU).
"""

import argparse

import torch

from datasets import load_dataset
from transformers import AutoModelForCausalLM, AutoTokenizer
from trl import DPOConfig, DPOTrainer


def main() -> None:
    p = argparse.ArgumentParser()
    for flag in ("--model", "--data", "--output", "--loss-type"):
        p.add_argument(flag, required=True)
    for flag in ("--beta", "--sft-weight", "--lr", "--warmup-ratio"):
        p.add_argument(flag, type=float, required=True)
    for flag in ("--epochs", "--micro-batch", "--grad-accum", "--max-length", "--seed"):
        p.add_argument(flag, type=int, required=True)
    a = p.parse_args()

    data = load_dataset("json", data_files=a.data, split="train")
    tokenizer = AutoTokenizer.from_pretrained(a.model)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    model = AutoModelForCausalLM.from_pretrained(a.model)
    # A checkpoint whose generation config samples (temperature/top_p) without do_sample cannot
    # be saved by transformers 5.
    gen = model.generation_config
    if gen is not None and (gen.temperature is not None or gen.top_p is not None):
        gen.do_sample = True
    # spar-host's SFT term (sft_weight x NLL of the chosen answer) is TRL's "sft" loss, weighted.
    loss_type = [a.loss_type] + (["sft"] if a.sft_weight > 0 else [])
    weights = [1.0] + ([a.sft_weight] if a.sft_weight > 0 else [])
    config = DPOConfig(
        output_dir=a.output,
        beta=a.beta,
        loss_type=loss_type,
        loss_weights=weights,
        learning_rate=a.lr,
        num_train_epochs=a.epochs,
        per_device_train_batch_size=a.micro_batch,
        gradient_accumulation_steps=a.grad_accum,
        max_length=a.max_length,
        warmup_steps=a.warmup_ratio,  # transformers 5: a float in [0, 1) is a ratio
        lr_scheduler_type="linear",
        seed=a.seed,
        save_strategy="no",
        logging_steps=1,
        report_to=[],
        # bf16 where the GPU has it; full precision on the CPU.
        bf16=torch.cuda.is_available() and torch.cuda.is_bf16_supported(),
        use_cpu=not torch.cuda.is_available(),
    )
    trainer = DPOTrainer(model=model, args=config, train_dataset=data, processing_class=tokenizer)
    trainer.train()
    trainer.save_model(a.output)
    tokenizer.save_pretrained(a.output)


if __name__ == "__main__":
    main()
