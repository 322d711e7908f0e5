"""Attack a seeded sample of a dataset, one result per line, resumable and shardable; and TextAttack's summary.

An output folder holds ``attack.json`` (the settings that decide the results) and one ``results*.jsonl`` per
process: ``results.jsonl``, or ``results.shard-K-of-N.jsonl`` for shard K. Every finished example is appended and
flushed at once; a process started again on the folder reads every results file there and attacks only the
examples none of them holds, so an interrupted run, or the shards of one, finish as one run. Each example is
attacked with its own seed (derived from the run's seed and its position in the sample), so results do not
depend on which examples ran before it, in this process or another.

What is attacked, and how a result is written, is the job's :class:`~advcl.attacks.tasks.AttackTask`
(:mod:`advcl.attacks.goals`): a label flip, or on an STS sample AdvSTS (:mod:`advcl.attacks.advsts`), whose pairs go
to TextAttack as two columns either of which may change, the gold score as the ground truth, and whose rows and
summary carry scores instead of labels.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

from advcl.attacks.tasks import STATUS, AttackTask
from advcl.data.dataset import TextDataset
from advcl.errors import BadInput
from advcl.runtime.atomic import write_text

@dataclass(frozen=True)
class Shard:
    """Shard ``index`` (1-based) of ``count``: the sample positions ``index-1, index-1+count, ...``."""

    index: int = 1
    count: int = 1

    @classmethod
    def parse(cls, text: str | None) -> Shard:
        if not text:
            return cls()
        index, sep, count = text.partition("/")
        if not sep or not index.isdigit() or not count.isdigit() or not 1 <= int(index) <= int(count):
            raise BadInput(f"--shard must be K/N with 1 ≤ K ≤ N (like 2/8), got {text!r}")
        return cls(int(index), int(count))

    def positions(self, n: int) -> list[int]:
        return list(range(self.index - 1, n, self.count))

    @property
    def filename(self) -> str:
        return "results.jsonl" if self.count == 1 else f"results.shard-{self.index}-of-{self.count}.jsonl"


@dataclass(frozen=True)
class Settings:
    """What decides an attack's results: a folder resumes only runs with equal settings."""

    attack: str
    options: dict
    model: str  # the checkpoint or model folder actually loaded
    data: str
    num_examples: int
    seed: int
    query_budget: int  # 0: unlimited
    max_length: int

    def as_dict(self) -> dict:
        return asdict(self)


def example_seed(seed: int, position: int) -> int:
    """The seed of one example (NumPy takes seeds below 2**32)."""
    return (seed * 1_000_003 + position) % 2**32


def open_folder(folder: Path, settings: Settings, overwrite: bool = False) -> dict[int, dict]:
    """Create or reopen an attack folder; return the finished rows by sample position."""
    record = folder / "attack.json"
    if overwrite and folder.is_dir():
        for path in [record, *folder.glob("results*.jsonl"), folder / "summary.json"]:
            path.unlink(missing_ok=True)
    if record.is_file():
        stored = json.loads(record.read_text())
        differ = [k for k, v in settings.as_dict().items() if stored.get(k) != v]
        if differ:
            changes = ", ".join(f"{k} {stored.get(k)!r} ≠ {getattr(settings, k)!r}" for k in differ)
            raise BadInput(f"{folder} holds results of another attack ({changes}): "
                           "choose another --output, or --overwrite")
    else:
        folder.mkdir(parents=True, exist_ok=True)
        record.write_text(json.dumps(settings.as_dict(), indent=2) + "\n")
    return read_results(folder)


def read_results(folder: Path) -> dict[int, dict]:
    """Every finished row in the folder's results files (a line cut short by a kill is ignored)."""
    rows: dict[int, dict] = {}
    for path in sorted(folder.glob("results*.jsonl")):
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                row = json.loads(line)
            except json.JSONDecodeError:
                continue
            rows.setdefault(row["index"], row)
    return rows


class ResultsFile:
    """Appends one JSON line per result and flushes it, after dropping a last line a kill cut short."""

    def __init__(self, path: Path):
        if path.is_file():
            data = path.read_bytes()
            if data and not data.endswith(b"\n"):
                with path.open("r+b") as handle:
                    handle.truncate(data.rfind(b"\n") + 1)
        self.handle = path.open("a", encoding="utf-8")

    def append(self, row: dict) -> None:
        self.handle.write(json.dumps(row, ensure_ascii=False) + "\n")
        self.handle.flush()

    def close(self) -> None:
        self.handle.close()


def attack_rows(attack, task: AttackTask, dataset: TextDataset, positions: list[int], seed: int) -> Iterator[dict]:
    """Attack each sample position in turn (each with its own seed) and yield its row, as ``task`` writes it."""
    import time

    from textattack.shared.utils import set_seed

    for position in positions:
        set_seed(example_seed(seed, position))
        start = time.perf_counter()
        label = dataset.labels[position]
        result = attack.attack(task.example_input(dataset, position), task.ground_truth(label))
        seconds = time.perf_counter() - start
        yield task.result_row(position, label, result, seconds)


def run(attack, task: AttackTask, dataset: TextDataset, folder: Path, seed: int, shard: Shard, done: dict[int, dict],
        on_row: Callable[[dict], None] = lambda row: None) -> list[dict]:
    """Attack the shard's positions that ``done`` lacks, appending to the shard's file; return the shard's rows."""
    positions = shard.positions(len(dataset))
    todo = [p for p in positions if p not in done]
    out = ResultsFile(folder / shard.filename)
    try:
        for row in attack_rows(attack, task, dataset, todo, seed):
            out.append(row)
            done[row["index"]] = row
            on_row(row)
    finally:
        out.close()
    return [done[p] for p in positions]


def summarise(rows: list[dict], task: AttackTask) -> dict:
    """TextAttack's summary (``AttackLogManager.log_summary``: AttackSuccessRate, WordsPerturbed, AttackQueries)
    from result rows, rounded as TextAttack rounds; a maximized result counts as successful, as there; plus the
    task's own keys (AdvSTS: the Spearman x 100 before and after the attack, :func:`advcl.attacks.advsts.spearman_summary`)."""
    total = len(rows)
    counts = {s: sum(r["status"] == s for r in rows) for s in STATUS.values()}
    succeeded = counts["successful"] + counts["maximized"]
    attacked = succeeded + counts["failed"]
    perturbed = [100.0 * r["words_perturbed"] / r["words"] for r in rows
                 if r["status"] in ("successful", "maximized") and r["words"] and r["words_perturbed"]]
    queried = [r["queries"] for r in rows if r["status"] != "skipped"]

    def mean(values):
        return round(sum(values) / len(values), 2) if values else None

    summary = {
        "examples": total,
        "successful_attacks": succeeded,
        "failed_attacks": counts["failed"],
        "skipped_attacks": counts["skipped"],
        "original_accuracy": round(100.0 * (total - counts["skipped"]) / total, 2) if total else None,
        "accuracy_under_attack": round(100.0 * counts["failed"] / total, 2) if total else None,
        "attack_success_rate": round(100.0 * succeeded / attacked, 2) if attacked else 0.0,
        "avg_perturbed_word_percent": mean(perturbed),
        "avg_words_per_input": mean([r["words"] for r in rows]),
        "avg_queries": mean(queried),
    }
    summary.update(task.summary_extra(rows))
    return summary


def write_json(path: Path, data: dict) -> None:
    write_text(path, json.dumps(data, indent=2, ensure_ascii=False) + "\n")
