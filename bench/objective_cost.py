"""Training-step time and peak memory of every objective relative to a baseline (prints one JSON object).

    python bench/objective_cost.py [--family supervised|sentence] [--batches 4] [--repeats 3] [--batch-size N]
                                   [--threads 2]

The shipped all-MiniLM-L6-v2 encoder, on CPU; every objective of a family trains on the same batches in the same
order. ``supervised`` (issue 3): the classification objectives relative to vanilla, on real SST-2 training
sentences (length 64, batch 32 by default). ``sentence`` (issue 4): the unsupervised sentence-embedding
objectives relative to simcse, on the shipped sentence corpus (length 32, batch 64 by default, as the
``*_sentences`` recipes); robustsentembed's replaced-token detection runs a generator of the shape
``mlm_head_sentences`` trains (MiniLM's weights and a BERT masked-LM head; the cost does not depend on how well it
fills). Batches are the first of the engine's epoch 0 (``--batching auto``: grouped by length for the supervised
family, random for the sentence family, whose objectives take negatives from the batch, as
``data.group_by_length = "auto"`` trains them); the optimizer is the engine's fused AdamW.

Time: all objectives run in one process, each on its own copy of the encoder with its own AdamW, after one
warm-up step. Every timed batch is stepped ``repeats`` times by every objective, in a fresh random order of the
objectives each time; an objective's time is the sum over the batches of its median step on each, so all are
timed on the same batches. A step is what the engine does: ``objective.step``, the engine's backward of the
returned loss, gradient clipping, ``AdamW.step``, ``zero_grad``. Reported: the step's CPU time over all threads
(``cpu_s``), its wall time (``step_s``) and the wall time of its forward/backward part alone (``fwd_bwd_s``, the
optimizer update excluded), and ratios to vanilla. On cores shared with other work, wall time measures the
neighbours as much as the step; CPU time, with idle OpenMP threads sleeping (``OMP_WAIT_POLICY=PASSIVE``, set
here), counts the step's own work and hardly moves under contention. Targets (issue 3): one-step methods ≤ 2.05×,
K-step methods ≤ 1.05·(K+1)×, judged on ``cpu_x`` (and on ``step_x`` on a quiet machine); the sentence family has
no target, only its ratios.

Memory: one fresh process per objective. After one warm-up step (AdamW's state exists, the allocator has seen a
step), the kernel's peak-RSS mark is reset (``/proc/self/clear_refs``), then two steps run; ``peak_mib`` is the
process's peak resident memory over them (VmHWM: weights, gradients, optimizer state, activations, Python) and
``step_mib`` that peak minus the resident memory before them (what a step adds). glibc malloc is told to serve
every block over 64 KiB with mmap (``MALLOC_MMAP_THRESHOLD_``), so freed tensors go back to the kernel and
resident memory follows live tensors, not the allocator's cache. Target (supervised): peak ≤ 1.15× vanilla's.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field

from bench_output import machine  # a sibling module: bench/ is on sys.path when run as a script

# Idle OpenMP threads sleep instead of spinning, so that CPU time counts the step's work only (see "Time"). It must
# be set before torch loads OpenMP.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import torch  # noqa: E402

from advcl.config.validate import build
from advcl.data.catalogue import load_data
from advcl.data.dataset import Columns
from advcl.data.batching import epoch_batches
from advcl.engine.optim import build_optimizer
from advcl.modeling.encoder import EncoderClassifier
from advcl.modeling.loading import load_classifier, load_tokenizer, resolve_model_path
from advcl.objectives.base import Objective, StepContext
from advcl.objectives.carl import CARL
from advcl.objectives.cat import CAT
from advcl.objectives.embedding_at import FGMTraining, FGSMTraining, PGDTraining
from advcl.objectives.freelb import FreeLBTraining
from advcl.objectives.rar import RAR
from advcl.objectives.robustsentembed import RobustSentEmbed
from advcl.objectives.scal import SCAL
from advcl.objectives.simcse import SimCSE
from advcl.objectives.smart import SMARTTraining
from advcl.objectives.uscal import USCAL
from advcl.objectives.vanilla import Vanilla

MODEL = "all-MiniLM-L6-v2"
SEED = 0


@dataclass
class Case:
    """One objective as benchmarked: its class, recipe options, and its time target (× vanilla) if it has one."""

    label: str
    cls: type[Objective]
    options: dict = field(default_factory=dict)
    passes: str = ""
    target: float | None = None


def k_step_target(k: int) -> float:
    return round(1.05 * (k + 1), 4)


SUPERVISED = [
    Case("vanilla", Vanilla, passes="1 fwd + 1 bwd"),
    Case("fgsm_at", FGSMTraining, passes="2 fwd + 2 bwd", target=2.05),
    Case("fgm_at", FGMTraining, passes="2 fwd + 2 bwd", target=2.05),
    Case("scal", SCAL, passes="2 fwd + 2 bwd + 1 input-only bwd (L_ct through both views)", target=2.05),
    Case("scal(detach_clean_view)", SCAL, {"detach_clean_view": True}, "2 fwd + 2 bwd", target=2.05),
    Case("cat", CAT, passes="2 fwd + 2 bwd + 1 input-only bwd (L_ctr through both views)", target=2.05),
    Case("cat(detach_clean_view)", CAT, {"detach_clean_view": True}, "2 fwd + 2 bwd", target=2.05),
    Case("pgd_at", PGDTraining, passes="K=3: 3 fwd + 3 input-only bwd (attack) + 1 fwd + 1 bwd", target=k_step_target(3)),
    Case("freelb", FreeLBTraining, passes="K=2: 2 fwd + 2 bwd", target=k_step_target(2)),
    Case("carl", CARL, {"contrast": {"num_negatives": 16000}},
         "K=2: 2 fwd + 2 bwd, + clean fwd + bwd for L_D (banks full, L_D on)", target=k_step_target(2)),
    Case("rar", RAR, passes="K=2: 2 fwd + 2 bwd, + the vocabulary decoder on the last pass", target=k_step_target(2)),
    Case("smart", SMARTTraining, passes="3 fwd + 1 input-only bwd + 2 bwd (no target in the issue)"),
]

SENTENCE = [
    Case("simcse", SimCSE, passes="1 fwd + 1 bwd of the 2N dropout views"),
    Case("uscal", USCAL, {"perturber": {"name": "fgm", "eps": 0.1, "scope": "sentence"}},
         "simcse + 1 input-only bwd (FGM direction) + 1 fwd/bwd of the adversarial view"),
    Case("robustsentembed", RobustSentEmbed, passes="simcse + max(K,T)=5 attack steps + adversarial view + "
         "generator fwd + RTD discriminator fwd/bwd"),
    Case("robustsentembed(rtd=false)", RobustSentEmbed, {"rtd": False}, "as robustsentembed without RTD"),
]


@dataclass
class Family:
    """Objectives benchmarked together against the first of them, on batches of one dataset."""

    cases: list[Case]
    data: str
    batch_size: int
    max_length: int
    memory_target: float | None
    grouped: bool  # batches grouped by length, as the engine trains the family by default (data.group_by_length)


FAMILIES = {
    "supervised": Family(SUPERVISED, "sst2:train", 32, 64, 1.15, True),
    "sentence": Family(SENTENCE, "sentences:train", 64, 32, None, False),  # in-batch negatives: random batches
}


def data_batches(family: Family, tokenizer, count: int, batch_size: int, grouped: bool) -> tuple[list[dict], int]:
    """``count`` batches of the family's training sentences and the size of the training set: the first batches
    of the engine's epoch 0 (:func:`advcl.data.batching.epoch_batches`, seed 0), grouped by length or not."""
    labelled = family.data != "sentences:train"
    train = load_data(family.data, Columns("text", "", "label" if labelled else ""))
    lengths = None
    if grouped:
        lengths = [len(ids) for ids in tokenizer(train.texts, truncation=True, max_length=family.max_length)["input_ids"]]
    drawn = epoch_batches(len(train.texts), batch_size, SEED, 0, lengths=lengths)
    batches = []
    for b in range(count):
        indices = drawn[b]
        encoded = tokenizer([train.texts[i] for i in indices], truncation=True, max_length=family.max_length,
                            padding=True, return_tensors="pt")
        batch = {k: encoded[k] for k in ("input_ids", "attention_mask", "token_type_ids") if k in encoded}
        if labelled:
            batch["labels"] = torch.tensor([train.labels[i] for i in indices])
        batch["index"] = torch.tensor(indices)
        batches.append(batch)
    return batches, len(train.texts)


def generator_folder() -> str:
    """A Hugging Face masked-LM folder shaped as ``mlm_head_sentences``'s: MiniLM's weights and a fresh BERT head."""
    from transformers import AutoConfig, BertForMaskedLM

    path = resolve_model_path(MODEL)
    folder = tempfile.mkdtemp(prefix="advcl-bench-generator-")
    masked_lm = BertForMaskedLM(AutoConfig.from_pretrained(path))
    masked_lm.bert.load_state_dict(load_classifier(MODEL, ["a", "b"])[0].base_model.state_dict(), strict=False)
    masked_lm.save_pretrained(folder)
    load_tokenizer(path).save_pretrained(folder)
    return folder


def build_case(case: Case, model: EncoderClassifier, num_train_examples: int) -> Objective:
    options = dict(case.options)
    if case.cls is RobustSentEmbed and options.get("rtd", True):
        options["generator"] = generator_folder()
    objective = case.cls(build(case.cls.Config, options, "objective"), model=model, num_labels=2,
                         num_train_examples=num_train_examples)
    if isinstance(objective, CARL):  # steady state after the first epoch: full banks, so L_D is on
        bank = objective.contrast
        generator = torch.Generator().manual_seed(SEED)
        for rows in (bank.bank_orig, bank.bank_adv):
            rows.copy_(torch.nn.functional.normalize(torch.randn(rows.shape, generator=generator), dim=-1))
        bank.bank_labels.copy_(torch.randint(0, 2, bank.bank_labels.shape, generator=generator))
    return objective


class Runner:
    """One objective, its own copy of the encoder and its own AdamW, stepped as the engine steps it."""

    def __init__(self, case: Case, num_train_examples: int):
        hf, _, _ = load_classifier(MODEL, ["negative", "positive"])
        self.model = EncoderClassifier(hf).train()
        self.objective = build_case(case, self.model, num_train_examples).train()
        self.optimizer = build_optimizer([self.model, self.objective], 2e-5, 0.01, fused=True)  # as the engine
        self.params = [p for g in self.optimizer.param_groups for p in g["params"]]
        self.steps = 0

    def step(self, batch: dict) -> tuple[float, float, float]:
        """Seconds: (whole step, its forward/backward part) of wall-clock time, and the whole step's CPU time."""
        ctx = StepContext(step=self.steps, total_steps=1_000_000, backward=lambda loss: loss.backward())
        started, cpu_started = time.perf_counter(), time.process_time()
        out = self.objective.step(batch, self.model, ctx)
        out.loss.backward()
        computed = time.perf_counter()
        torch.nn.utils.clip_grad_norm_(self.params, 1.0)
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        self.steps += 1
        return time.perf_counter() - started, computed - started, time.process_time() - cpu_started


def time_all(family: Family, num_batches: int, repeats: int, batch_size: int, grouped: bool) -> dict:
    """Per objective: the sum over the batches of the median of ``repeats`` steps on each (wall, fwd/bwd, CPU)."""
    batches, num_train = data_batches(family, load_tokenizer(resolve_model_path(MODEL)), num_batches + 1, batch_size,
                                      grouped)
    cases = family.cases
    runners = [Runner(case, num_train) for case in cases]
    for runner in runners:
        runner.step(batches[0])  # warm-up
    samples = {(case.label, b): [] for case in cases for b in range(1, num_batches + 1)}
    shuffle = random.Random(SEED)
    for _ in range(repeats):
        for b in range(1, num_batches + 1):
            order = list(zip(cases, runners))
            shuffle.shuffle(order)  # no objective always runs right after another
            for case, runner in order:
                samples[case.label, b].append(runner.step(batches[b]))
    medians = {
        case.label: [
            sum(statistics.median(s[k] for s in samples[case.label, b]) for b in range(1, num_batches + 1))
            for k in range(3)
        ]
        for case in cases
    }
    timed = batches[1:]
    return {"medians": medians, "mean_real_tokens_per_batch": statistics.mean(int(b["attention_mask"].sum()) for b in timed),
            "mean_padded_length": statistics.mean(b["input_ids"].shape[1] for b in timed)}


def _status_kib(field_name: str) -> int:
    return int(re.search(rf"{field_name}:\s+(\d+) kB", open("/proc/self/status").read()).group(1))


def memory_of(family: Family, label: str, batch_size: int, grouped: bool) -> dict:
    """In this (fresh) process: resident memory before and peak over two steps after a warm-up step."""
    case = next(c for c in family.cases if c.label == label)
    batches, num_train = data_batches(family, load_tokenizer(resolve_model_path(MODEL)), 3, batch_size, grouped)
    runner = Runner(case, num_train)
    runner.step(batches[0])
    with open("/proc/self/clear_refs", "w") as handle:
        handle.write("5")  # reset VmHWM to the current resident size
    before = _status_kib("VmRSS")
    for batch in batches[1:]:
        runner.step(batch)
    peak = _status_kib("VmHWM")
    return {"peak_mib": peak / 1024, "step_mib": (peak - before) / 1024}


def measure_memory(family_name: str, batch_size: int, threads: int, grouped: bool) -> dict:
    env = {**os.environ, "MALLOC_MMAP_THRESHOLD_": "65536", "OMP_NUM_THREADS": str(threads)}
    found = {}
    for case in FAMILIES[family_name].cases:
        done = subprocess.run(
            [sys.executable, __file__, "--family", family_name, "--memory-of", case.label,
             "--batch-size", str(batch_size), "--threads", str(threads),
             "--batching", "grouped" if grouped else "random"],
            capture_output=True, text=True, env=env, check=True,
        )
        found[case.label] = json.loads(done.stdout.strip().splitlines()[-1])
    return found


def report(family_name: str, num_batches: int, repeats: int, batch_size: int, threads: int, grouped: bool) -> dict:
    family = FAMILIES[family_name]
    baseline = family.cases[0].label
    load_at_start = [round(x, 2) for x in os.getloadavg()]
    timing = time_all(family, num_batches, repeats, batch_size, grouped)
    memory = measure_memory(family_name, batch_size, threads, grouped)
    base_step, base_compute, base_cpu = timing["medians"][baseline]
    base_memory = memory[baseline]
    rows = {}
    for case in family.cases:
        step_s, fwd_bwd_s, cpu_s = timing["medians"][case.label]
        mem = memory[case.label]
        row = {
            "passes": case.passes,
            "step_s": round(step_s, 4),
            "fwd_bwd_s": round(fwd_bwd_s, 4),
            "cpu_s": round(cpu_s, 4),
            "step_x": round(step_s / base_step, 3),
            "fwd_bwd_x": round(fwd_bwd_s / base_compute, 3),
            "cpu_x": round(cpu_s / base_cpu, 3),
            "peak_mib": round(mem["peak_mib"], 1),
            "step_mib": round(mem["step_mib"], 1),
            "peak_x": round(mem["peak_mib"] / base_memory["peak_mib"], 3),
            "step_mem_x": round(mem["step_mib"] / base_memory["step_mib"], 3),
        }
        if case.target is not None:
            row["time_target_x"] = case.target
            row["meets_time_target"] = row["cpu_x"] <= case.target
        if case.label != baseline and family.memory_target is not None:
            row["meets_memory_target"] = row["peak_x"] <= family.memory_target
        rows[case.label] = row
    return {
        "benchmark": "objective_cost",
        "family": family_name,
        "baseline": baseline,
        "model": MODEL,
        "data": f"{family.data} (seeded draw)",
        "batch_size": batch_size,
        "max_length": family.max_length,
        "batching": "grouped by length" if grouped else "random",
        "timed_batches": num_batches,
        "repeats_per_batch": repeats,
        "mean_real_tokens_per_batch": round(timing["mean_real_tokens_per_batch"], 1),
        "mean_padded_length": round(timing["mean_padded_length"], 1),
        "machine": machine(torch_threads=threads, torch=torch.__version__, load_average_at_start=load_at_start),
        "time": "seconds over the timed batches, each batch's median repeat; cpu_s: CPU time of objective.step + "
                "engine backward + clip + AdamW, all threads, idle OpenMP threads sleeping; step_s: its wall time; "
                f"fwd_bwd_s: wall time without the optimizer update; *_x: ratio to {baseline}; targets judged on cpu_x",
        "memory": "fresh process per objective; peak_mib: peak RSS over two steps after a warm-up step; step_mib: that "
                  f"peak minus RSS before them; *_x: ratio to {baseline}",
        "objectives": rows,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--family", choices=sorted(FAMILIES), default="supervised")
    parser.add_argument("--batches", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--batch-size", type=int, help="default: 32 (supervised), 64 (sentence)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--batching", choices=["auto", "grouped", "random"], default="auto",
                        help="auto: as the engine trains the family by default (supervised grouped, sentence random)")
    parser.add_argument("--memory-of", help=argparse.SUPPRESS)  # internal: one objective's memory, in a child
    args = parser.parse_args()
    family = FAMILIES[args.family]
    batch_size = args.batch_size or family.batch_size
    torch.set_num_threads(args.threads)
    torch.manual_seed(SEED)
    grouped = family.grouped if args.batching == "auto" else args.batching == "grouped"
    if args.memory_of:
        print(json.dumps(memory_of(family, args.memory_of, batch_size, grouped)))
        return
    print(json.dumps(report(args.family, args.batches, args.repeats, batch_size, args.threads, grouped), indent=2))


if __name__ == "__main__":
    main()
