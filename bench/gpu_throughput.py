"""Training throughput of the engine on a GPU: tokens/s, step time and model FLOPs utilisation (prints one JSON object).

    python bench/gpu_throughput.py [--seq-lens 64 128] [--batch-sizes 32 64 128 256 512] [--steps 20]
                                   [--objectives vanilla cat cat_detached] [--peak-flops 989e12]
    python bench/gpu_throughput.py --device cpu --tiny      # smoke run: a tiny encoder, seconds on a CPU

Model: a BERT-base-shaped classifier (``transformers.BertConfig()``: 12 layers, d = 768, 12 heads, FFN 3072,
vocabulary 30,522; random weights built in memory, nothing downloaded), 2 labels, bf16 autocast on CUDA (fp32 on
a CPU). Data: random token ids, every row exactly L tokens ([CLS] ... [SEP], no padding), random labels.

What is timed is the engine's own step: a real :class:`advcl.engine.trainer.Trainer`, built from an in-memory
recipe, and its ``train_step()``, which is what ``advcl train`` runs every step: collate, the host-to-device copy
(pinned, non-blocking), autocast, the objective's passes through ``TrainStep``, the engine's backward, gradient
clipping, AdamW (fused on CUDA) and the learning-rate schedule. After ``--warmup`` untimed steps, ``--steps``
steps are timed between two ``torch.cuda.synchronize()``; step time is their mean.

Model FLOPs per token, with N the weights of the encoder layers' matrix multiplications (embedding lookups,
biases, norms and the per-sentence pooler/classifier/projection heads left out: < 1 % for BERT-base) and
a = n_layers·L·d (attention scores QKᵀ and their weighted sum, 2·L·d FLOPs each per layer and token):

    forward             F   = 2N + 4a
    full backward       B   = 4N + 8a     (gradients of activations and weights)
    input-only backward B_x = 2N + 8a     (gradients of activations only: CAT's ∇_E CE)

    vanilla            F + B               = 6N + 12a    (PaLM, Chowdhery et al. 2022, appendix B)
    cat                2F + B_x + 2B       = 14N + 32a   (L_ctr through both views: the clean graph is kept)
    cat_detached       2F + 2B             = 12N + 24a   (``detach_clean_view``: two forward, two backward)

``mfu`` = (FLOPs per token x tokens per step) / step time / peak, with the objective's own FLOPs; the peak is
the dense bf16 tensor-core rate of the detected GPU (:data:`PEAK_BF16`), or ``--peak-flops``; null when unknown
(a CPU). Targets (the Scale issue): vanilla ``mfu`` ≥ 0.40, and CAT's step time ≤ 2.05 x vanilla's at the same
shape (``step_ratio_to_vanilla``); ``flops_ratio_to_vanilla`` is that ratio's floor for a step that wastes nothing
(2.33 for ``cat``, whose kept clean graph costs an input-only backward, 2.00 for ``cat_detached``).
A batch size that does not fit is reported as ``"oom": true`` and larger ones for that objective and length are
skipped.
"""

from __future__ import annotations

import argparse
import gc
import json
import platform
import sys
import tempfile
import time
from pathlib import Path

import torch

# dense bf16 tensor-core FLOP/s by GPU name (the first key found in torch.cuda.get_device_name(), in this order)
PEAK_BF16 = {
    "H100 PCIe": 756e12,
    "H100 NVL": 835e12,
    "H100": 989e12,  # SXM
    "H200": 989e12,
    "GH200": 989e12,
    "A100": 312e12,
    "L40S": 362e12,
    "L4": 121e12,
    "A10G": 70e12,
}

OBJECTIVES = {  # name -> (objective recipe table, FLOPs per token as (N coefficient, a coefficient))
    "vanilla": ({"name": "vanilla"}, (6, 12)),
    "cat": ({"name": "cat"}, (14, 32)),
    "cat_detached": ({"name": "cat", "detach_clean_view": True}, (12, 24)),
}
BASELINE = "vanilla"
OUT_OF_MEMORY = getattr(torch, "OutOfMemoryError", torch.cuda.OutOfMemoryError)


def peak_flops(device: torch.device, override: float | None) -> tuple[float | None, str]:
    if override:
        return override, "--peak-flops"
    if device.type != "cuda":
        return None, "unknown (not a GPU)"
    name = torch.cuda.get_device_name(device)
    for key, value in PEAK_BF16.items():
        if key in name:
            return value, f"table: {key}"
    return None, f"unknown GPU {name!r}: pass --peak-flops"


def encoder_config(tiny: bool):
    from transformers import BertConfig

    if tiny:
        return BertConfig(vocab_size=1000, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                          intermediate_size=64, max_position_embeddings=128, num_labels=2)
    return BertConfig(num_labels=2)  # BERT-base


def matmul_weights(hf) -> int:
    """N: weights of the encoder layers' matrix multiplications (what every token goes through)."""
    return sum(p.numel() for name, p in hf.bert.encoder.named_parameters() if p.ndim == 2)


def random_data(rows: int, length: int, vocab: int, seed: int):
    from advcl.data.batching import EncodedDataset

    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(1000 if vocab > 2000 else 5, vocab, (rows, length), generator=g)
    ids[:, 0], ids[:, -1] = 101 % vocab, 102 % vocab  # [CLS] ... [SEP]
    return EncodedDataset(
        input_ids=ids.tolist(),
        token_type_ids=[[0] * length for _ in range(rows)],
        labels=torch.randint(0, 2, (rows,), generator=g).tolist(),
        pad_token_id=0,
    )


def build_trainer(objective: str, config, batch_size: int, length: int, steps: int, device, precision, workdir):
    """A real engine Trainer (no run folder is written: only ``train_step`` is called)."""
    from transformers import BertForSequenceClassification

    from advcl.config.recipe import load_recipe
    from advcl.engine.trainer import Trainer
    from advcl.modeling.encoder import EncoderClassifier
    from advcl.objectives.base import create
    from advcl.runs import RunFolder

    table, _ = OBJECTIVES[objective]
    recipe = load_recipe(None, data={
        "run": {"name": "bench", "output_dir": str(workdir), "device": device.type, "precision": precision,
                "deterministic": False, "seed": 0},
        "model": {"max_length": length},
        "data": {"train": "random"},
        "train": {"batch_size": batch_size, "epochs": 0, "max_steps": 1_000_000, "lr": 2e-5, "warmup_ratio": 0.0,
                  "max_grad_norm": 1.0},
        "objective": table,
    })
    torch.manual_seed(0)
    hf = BertForSequenceClassification(config)
    model = EncoderClassifier(hf, "cls").to(device)
    data = random_data(batch_size * steps, length, config.vocab_size, seed=batch_size * 1000 + length)
    obj = create(recipe.objective, model=model, num_labels=2, num_train_examples=len(data)).to(device)
    return Trainer(recipe, RunFolder(Path(workdir) / "bench"), model, obj, data, None, device)


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def measure(trainer, warmup: int, steps: int, device) -> float:
    """Mean seconds per engine step over ``steps`` after ``warmup`` untimed ones."""
    for _ in range(warmup):
        trainer.train_step()
        trainer.state.step += 1
    synchronize(device)
    started = time.perf_counter()
    for _ in range(steps):
        trainer.train_step()
        trainer.state.step += 1
    synchronize(device)
    return (time.perf_counter() - started) / steps


def run(args) -> dict:
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        sys.exit("error: --device cuda but no CUDA device is available (use --device cpu --tiny for a smoke run)")
    torch.set_float32_matmul_precision("high")
    precision = "bf16" if device.type == "cuda" else "fp32"
    config = encoder_config(args.tiny)
    peak, peak_source = peak_flops(device, args.peak_flops)
    from transformers import BertForSequenceClassification

    n = matmul_weights(BertForSequenceClassification(config))
    results, baseline = [], {}
    with tempfile.TemporaryDirectory() as workdir:
        for length in args.seq_lens:
            a = config.num_hidden_layers * length * config.hidden_size
            for objective in args.objectives:
                n_coef, a_coef = OBJECTIVES[objective][1]
                flops_per_token = n_coef * n + a_coef * a
                for batch_size in args.batch_sizes:
                    row = {"objective": objective, "seq_len": length, "batch_size": batch_size,
                           "tokens_per_step": batch_size * length}
                    trainer = None
                    try:
                        trainer = build_trainer(objective, config, batch_size, length, args.warmup + args.steps,
                                                device, precision, workdir)
                        if device.type == "cuda":
                            torch.cuda.reset_peak_memory_stats(device)
                        step_s = measure(trainer, args.warmup, args.steps, device)
                    except OUT_OF_MEMORY:
                        results.append(row | {"oom": True})
                        break
                    finally:
                        del trainer
                        gc.collect()
                        if device.type == "cuda":
                            torch.cuda.empty_cache()
                    flops_per_step = flops_per_token * batch_size * length
                    row |= {
                        "step_s": step_s,
                        "tokens_per_s": batch_size * length / step_s,
                        "model_flops_per_token": flops_per_token,
                        "model_flops_per_step": flops_per_step,
                        "achieved_flops": flops_per_step / step_s,
                        "mfu": flops_per_step / step_s / peak if peak else None,
                        "peak_memory_gib": (torch.cuda.max_memory_allocated(device) / 2**30
                                            if device.type == "cuda" else None),
                    }
                    if objective == BASELINE:
                        baseline[length, batch_size] = row
                    elif (length, batch_size) in baseline:
                        base = baseline[length, batch_size]
                        row["step_ratio_to_vanilla"] = step_s / base["step_s"]
                        row["flops_ratio_to_vanilla"] = flops_per_token / base["model_flops_per_token"]
                    results.append(row)
    measured = [r for r in results if not r.get("oom")]
    best_vanilla = max((r["mfu"] for r in measured if r["objective"] == BASELINE and r["mfu"] is not None),
                       default=None)
    cat_ratios = [r["step_ratio_to_vanilla"] for r in measured
                  if r["objective"] == "cat" and "step_ratio_to_vanilla" in r]
    judged = device.type == "cuda" and not args.tiny  # the targets are for BERT-base on a GPU
    return {
        "benchmark": "gpu_throughput",
        "engine_step": "advcl.engine.trainer.Trainer.train_step",
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or "cpu",
        "torch": torch.__version__,
        "precision": precision,
        "model": "tiny BERT (smoke run: targets not judged)" if args.tiny else "BERT-base shape, random weights",
        "encoder": {"layers": config.num_hidden_layers, "hidden": config.hidden_size,
                    "heads": config.num_attention_heads, "ffn": config.intermediate_size,
                    "matmul_weights_N": n},
        "flops_formula": {"vanilla": "6N + 12a", "cat": "14N + 32a", "cat_detached": "12N + 24a",
                          "a": "n_layers * seq_len * hidden"},
        "peak_flops": peak,
        "peak_flops_source": peak_source,
        "warmup_steps": args.warmup,
        "timed_steps": args.steps,
        "results": results,
        "summary": {
            "best_vanilla_mfu": best_vanilla,
            "vanilla_mfu_target": 0.40,
            "vanilla_mfu_met": None if best_vanilla is None or not judged else best_vanilla >= 0.40,
            "max_cat_step_ratio": max(cat_ratios, default=None),
            "cat_step_ratio_target": 2.05,
            "cat_step_ratio_met": None if not cat_ratios or not judged else max(cat_ratios) <= 2.05,
        },
    }


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda", help="cuda (default) or cpu")
    parser.add_argument("--tiny", action="store_true", help="a tiny encoder, seq 16, batch 4, 2 steps: a smoke run")
    parser.add_argument("--seq-lens", type=int, nargs="+", default=None, help="default 64 128 (tiny: 16)")
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=None,
                        help="ascending; default 32 64 128 256 512 (tiny: 4)")
    parser.add_argument("--objectives", nargs="+", choices=sorted(OBJECTIVES), default=list(OBJECTIVES))
    parser.add_argument("--steps", type=int, default=None, help="timed steps (default 20; tiny: 2)")
    parser.add_argument("--warmup", type=int, default=None, help="untimed steps first (default 3; tiny: 1)")
    parser.add_argument("--peak-flops", type=float, default=None, help="peak FLOP/s for MFU (default: by GPU name)")
    args = parser.parse_args(argv)
    args.seq_lens = args.seq_lens or ([16] if args.tiny else [64, 128])
    args.batch_sizes = sorted(args.batch_sizes or ([4] if args.tiny else [32, 64, 128, 256, 512]))
    args.steps = args.steps or (2 if args.tiny else 20)
    args.warmup = args.warmup if args.warmup is not None else (1 if args.tiny else 3)
    if BASELINE in args.objectives:  # ratios need vanilla measured first
        args.objectives = [BASELINE] + [o for o in args.objectives if o != BASELINE]
    print(json.dumps(run(args), indent=2))


if __name__ == "__main__":
    main()
