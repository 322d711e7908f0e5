"""advcl against Hugging Face ``Trainer`` on the same fine-tuning job (issue 13); prints one JSON object.

    python bench/vs_trainer.py [--rounds 2] [--seeds 42 43] [--variants advcl trainer_group ...] [--threads 2]
                               [--rows 2000] [--out FILE]

The job: all-MiniLM-L6-v2 with its sequence-classification head (BERT's pooler on [CLS], a new linear layer), the
same ``--rows`` SST-2 training sentences for both tools (advcl's seeded subset of ``sst2:train``), batch 32, max
length 64, one epoch, AdamW at lr 5e-5 with Trainer's defaults (no warm-up, no weight decay, a linear decay to 0,
gradient clipping at 1), ``--threads`` torch threads, CPU. Variants:

- ``advcl``: ``advcl train`` (objective vanilla), its default batching (grouped by length);
- ``advcl_random``: the same with ``data.group_by_length = "off"`` (random batches);
- ``trainer``: ``transformers.Trainer`` with its defaults (random batches, ``DataCollatorWithPadding``);
- ``trainer_group``: the same with ``group_by_length=True``.

Each variant runs in a fresh process; a round runs every variant once, the order rotating from round to round,
so a neighbour's load on a shared machine falls on all of them alike. ``train_s`` is the training loop
(advcl: ``Trainer.fit``, which includes writing the final checkpoint; HF: ``Trainer.train``), ``setup_s`` the
model load, tokenisation and construction before it. Validation accuracy on the full SST-2 validation split
(872 sentences) is measured after training, untimed, with each tool's own prediction path. Reported per round:
every variant's times, examples/s and accuracy, and ``speedup`` = Trainer-variant train_s / advcl train_s; the
summary gives the median ratios. Target (issue 13): advcl ≥ 1.25× ``trainer_group`` at equal accuracy.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench_output import emit, machine  # a sibling module: bench/ is on sys.path when run as a script

VARIANTS = ("advcl", "advcl_random", "trainer", "trainer_group")
MODEL = "all-MiniLM-L6-v2"
BATCH, MAX_LENGTH, LR, EPOCHS = 32, 64, 5e-5, 1


def job_data(rows: int, seed: int):
    """The training rows (advcl's seeded subset) and the validation split, as advcl's TextDatasets."""
    from advcl.data.catalogue import load_data

    train = load_data("sst2:train").sample(rows, seed)
    return train, load_data("sst2:validation", None, train.label_names)


def run_advcl(group: str, rows: int, seed: int, folder: Path) -> dict:
    from advcl.config.recipe import load_recipe
    from advcl.data.batching import encode
    from advcl.engine import trainer as trainer_module
    from advcl.engine.session import start_training
    from advcl.evaluation.classify import evaluate
    from advcl.modeling.loading import load_tokenizer, resolve_model_path

    recipe = load_recipe(None, data={
        "run": {"name": "bench", "output_dir": str(folder), "seed": seed},
        "model": {"name": MODEL, "pooling": "cls", "max_length": MAX_LENGTH},
        "data": {"train": "sst2:train", "max_train_examples": rows, "group_by_length": group},
        "train": {"epochs": EPOCHS, "batch_size": BATCH, "lr": LR, "weight_decay": 0.0, "warmup_ratio": 0.0,
                  "max_grad_norm": 1.0, "log_every": 10},
        "objective": {"name": "vanilla"},
    })
    seen = {}
    fit = trainer_module.Trainer.fit

    def timed_fit(self):  # the training loop alone, as Trainer.train is timed below
        seen["trainer"] = self
        started = time.perf_counter()
        try:
            return fit(self)
        finally:
            seen["train_s"] = time.perf_counter() - started

    trainer_module.Trainer.fit = timed_fit
    started = time.perf_counter()
    report = start_training(recipe)
    total = time.perf_counter() - started
    trainer = seen["trainer"]
    _, validation = job_data(rows, seed)
    encoded = encode(validation, load_tokenizer(resolve_model_path(MODEL)), MAX_LENGTH)
    metrics = evaluate(trainer.model, encoded, 2, 128, trainer.device)
    return {"train_s": seen["train_s"], "setup_s": total - seen["train_s"], "accuracy": metrics["accuracy"],
            "steps": trainer.state.step, "step_s_only": report.get("train_seconds")}


def run_trainer(group_by_length: bool, rows: int, seed: int, folder: Path) -> dict:
    import numpy as np
    from datasets import Dataset
    from transformers import (AutoModelForSequenceClassification, AutoTokenizer, DataCollatorWithPadding, Trainer,
                              TrainingArguments)
    from transformers.utils import logging as hf_logging

    from advcl.modeling.loading import resolve_model_path

    hf_logging.set_verbosity_error()
    started = time.perf_counter()
    train, validation = job_data(rows, seed)
    path = resolve_model_path(MODEL)
    tokenizer = AutoTokenizer.from_pretrained(path)
    model = AutoModelForSequenceClassification.from_pretrained(path, num_labels=2)

    def tokenised(data):
        dataset = Dataset.from_dict({"text": data.texts, "label": data.labels})
        return dataset.map(lambda b: tokenizer(b["text"], truncation=True, max_length=MAX_LENGTH), batched=True,
                           remove_columns=["text"])

    train_ds, validation_ds = tokenised(train), tokenised(validation)
    arguments = TrainingArguments(
        output_dir=str(folder / "hf"), per_device_train_batch_size=BATCH, per_device_eval_batch_size=128,
        learning_rate=LR, num_train_epochs=EPOCHS, seed=seed, group_by_length=group_by_length, use_cpu=True,
        report_to="none", save_strategy="no", disable_tqdm=True,
    )
    trainer = Trainer(model=model, args=arguments, train_dataset=train_ds, data_collator=DataCollatorWithPadding(tokenizer))
    setup = time.perf_counter() - started
    started = time.perf_counter()
    result = trainer.train()
    train_s = time.perf_counter() - started
    predictions = trainer.predict(validation_ds)
    # label_ids, not validation.labels: with group_by_length Trainer predicts in its own (length-grouped) order
    accuracy = float((np.argmax(predictions.predictions, -1) == predictions.label_ids).mean())
    return {"train_s": train_s, "setup_s": setup, "accuracy": accuracy, "steps": result.global_step,
            "hf_train_runtime": result.metrics.get("train_runtime"), "train_loss": result.metrics.get("train_loss"),
            "predicted_positive": float((np.argmax(predictions.predictions, -1) == 1).mean())}


def worker(variant: str, rows: int, seed: int, threads: int) -> dict:
    import torch

    torch.set_num_threads(threads)
    with tempfile.TemporaryDirectory(prefix="vs_trainer_") as tmp:
        if variant.startswith("advcl"):
            out = run_advcl("off" if variant == "advcl_random" else "auto", rows, seed, Path(tmp))
        else:
            out = run_trainer(variant == "trainer_group", rows, seed, Path(tmp))
    out["examples_per_s"] = rows * EPOCHS / out["train_s"]
    return {"variant": variant, "seed": seed, **{k: round(v, 4) if isinstance(v, float) else v for k, v in out.items()}}


def spawn(variant: str, rows: int, seed: int, threads: int) -> dict:
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads),
           "TOKENIZERS_PARALLELISM": "false", "HF_HUB_OFFLINE": "1", "TRANSFORMERS_VERBOSITY": "error"}
    done = subprocess.run(
        [sys.executable, __file__, "--worker", variant, "--rows", str(rows), "--seeds", str(seed),
         "--threads", str(threads)], capture_output=True, text=True, env=env,
    )
    if done.returncode != 0:
        raise SystemExit(f"{variant} (seed {seed}) failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--seeds", type=int, nargs="+", default=[42], help="round r uses seeds[r %% len(seeds)]")
    parser.add_argument("--variants", nargs="+", choices=VARIANTS, default=list(VARIANTS))
    parser.add_argument("--rows", type=int, default=2000)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=Path, help="also write the JSON here")
    parser.add_argument("--worker", choices=VARIANTS, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(args.worker, args.rows, args.seeds[0], args.threads)))
        return
    import transformers

    rounds = []
    for r in range(args.rounds):
        seed = args.seeds[r % len(args.seeds)]
        order = args.variants[r % len(args.variants):] + args.variants[: r % len(args.variants)]
        results = {v: spawn(v, args.rows, seed, args.threads) for v in order}
        entry = {"round": r, "seed": seed, "order": order, "results": results}
        if "advcl" in results:
            entry["speedup"] = {v: round(results[v]["train_s"] / results["advcl"]["train_s"], 3)
                                for v in results if v != "advcl"}
        rounds.append(entry)
        print(json.dumps(entry), file=sys.stderr)
    summary = {}
    for v in args.variants:
        runs = [e["results"][v] for e in rounds]
        summary[v] = {"train_s_median": round(statistics.median(x["train_s"] for x in runs), 2),
                      "examples_per_s_median": round(statistics.median(x["examples_per_s"] for x in runs), 1),
                      "accuracy_mean": round(statistics.mean(x["accuracy"] for x in runs), 4),
                      "accuracies": [x["accuracy"] for x in runs]}
    if "advcl" in args.variants:
        summary["speedup_median"] = {v: round(statistics.median(e["speedup"][v] for e in rounds), 3)
                                     for v in args.variants if v != "advcl"}
    out = {"job": {"model": MODEL, "rows": args.rows, "batch_size": BATCH, "max_length": MAX_LENGTH, "epochs": EPOCHS,
                   "lr": LR, "threads": args.threads}, "machine": machine(),
           "transformers": transformers.__version__, "rounds": rounds, "summary": summary}
    emit(out, args.out)


if __name__ == "__main__":
    main()
