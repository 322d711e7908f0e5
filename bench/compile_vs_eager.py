"""Does ``torch.compile`` make a training step cheaper on this CPU? (issue 13: the lever left after length grouping)

The vs_trainer job's model, batch size and length (all-MiniLM-L6-v2 with a classification head, batches of 32, max
length 64, fused AdamW, lr 5e-5), not its batching: the first ``--rows`` SST-2 training rows sorted once by
character length into batches of 32, in a seeded shuffled order. Plain PyTorch, one process per mode so that none
inherits another's state or compiled graphs: ``eager``; ``compile``, ``torch.compile(model)`` as a user would write
it (static shapes first, dynamic after the first recompile); ``compile_dynamic``, ``dynamic=True`` from the start.
Each mode trains two passes over the same batches: the first pays compilation, the second is the steady state.
The modes run in turn, ``--rounds`` times, so that a shared machine's load falls on all alike. Prints JSON: per mode
and round, the first pass's time, the second pass's time per step, Dynamo's counters (graphs compiled, frames),
and per compiled mode the median over rounds of eager's steady step ÷ its own (above 1: compile is faster).

    python bench/compile_vs_eager.py --rounds 2 --out bench/results/compile_vs_eager.json

Inductor keeps compiled kernels in an on-disk cache, so a later round may compile faster than the first.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import time
from pathlib import Path

from bench_output import emit, machine  # a sibling module: bench/ is on sys.path when run as a script

MODES = ("eager", "compile", "compile_dynamic")


def worker(mode: str, rows: int, threads: int) -> dict:
    import torch
    from torch._dynamo.utils import counters
    from transformers import AutoModelForSequenceClassification

    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from advcl.data.catalogue import load_data
    from advcl.modeling.loading import load_tokenizer, resolve_model_path

    torch.set_num_threads(threads)
    path = resolve_model_path("all-MiniLM-L6-v2")
    tokenizer = load_tokenizer(path)
    data = load_data("sst2:train").select(range(rows))
    order = sorted(range(rows), key=lambda i: len(data.texts[i]))
    batches = [order[i:i + 32] for i in range(0, rows, 32)]
    random.Random(0).shuffle(batches)
    encoded = [(tokenizer([data.texts[i] for i in b], padding=True, truncation=True, max_length=64,
                          return_tensors="pt"), torch.tensor([data.labels[i] for i in b])) for b in batches]
    torch.manual_seed(0)
    model = AutoModelForSequenceClassification.from_pretrained(path, num_labels=2)
    model.train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=5e-5, fused=True)
    if mode == "eager":
        forward = model
    elif mode == "compile":
        forward = torch.compile(model)
    else:
        forward = torch.compile(model, dynamic=True)

    def one_pass() -> float:
        start = time.perf_counter()
        for inputs, labels in encoded:
            forward(**inputs, labels=labels).loss.backward()
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
        return time.perf_counter() - start

    first = one_pass()
    second = one_pass()
    return {"first_pass_s": round(first, 2), "steady_step_s": round(second / len(encoded), 4),
            "steps_per_pass": len(encoded), "shapes": len({int(x["input_ids"].shape[1]) for x, _ in encoded}),
            "dynamo": {name: dict(values) for name, values in counters.items() if name in ("frames", "stats")}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--rows", type=int, default=640)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--modes", nargs="+", choices=MODES, default=list(MODES))
    parser.add_argument("--out", type=Path, help="also write the JSON here")
    parser.add_argument("--worker", choices=MODES, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(args.worker, args.rows, args.threads)))
        return
    import torch

    rounds = []
    env = {**os.environ, "OMP_NUM_THREADS": str(args.threads)}
    for _ in range(args.rounds):
        found = {}
        for mode in args.modes:
            done = subprocess.run([sys.executable, __file__, "--worker", mode, "--rows", str(args.rows),
                                   "--threads", str(args.threads)], capture_output=True, text=True, check=True, env=env)
            found[mode] = json.loads(done.stdout.strip().splitlines()[-1])
        rounds.append(found)
    summary = {mode: round(statistics.median(r["eager"]["steady_step_s"] / r[mode]["steady_step_s"] for r in rounds), 3)
               for mode in args.modes if mode != "eager" and "eager" in args.modes}
    emit({"job": {"model": "all-MiniLM-L6-v2", "rows": args.rows, "batch_size": 32, "max_length": 64,
                  "threads": args.threads}, "machine": machine(torch=torch.__version__), "rounds": rounds,
          "eager_over_mode_steady_median": summary}, args.out)


if __name__ == "__main__":
    main()
