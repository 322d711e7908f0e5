"""Markdown tables for docs/results.md from the run folders and suite results the scripts beside it write.

    python docs/results/tabulate.py supervised runs/results/sst2     # method-s<seed>/report.json
    python docs/results/tabulate.py sentence runs/results/sentences  # <model>.{sts,transfer,advsts}.json
    python docs/results/tabulate.py text runs/results/text           # <model>/report.json, <model>.<attack>.json
"""

from __future__ import annotations

import json
import statistics
import sys
from collections import defaultdict
from pathlib import Path

METHODS = ["vanilla", "fgsm", "freelb", "scal", "cat", "carl", "rar"]
MODELS = ["all-MiniLM-L6-v2", "simcse", "uscal", "rse"]
TEXT_MODELS = ["vanilla", "ada", "taichi"]
ATTACKS = ["deepwordbug", "pwws", "textfooler", "textbugger"]


def finished(path: Path) -> dict | None:
    """A result file's JSON, or None while it is missing or still being written (empty)."""
    return json.loads(path.read_text()) if path.is_file() and path.stat().st_size else None


def mean_std(values: list[float]) -> str:
    """``mean ± sample std`` in percent; a single value alone (it has no spread)."""
    if len(values) == 1:
        return f"{100 * values[0]:.1f}"
    return f"{100 * statistics.mean(values):.1f} ± {100 * statistics.stdev(values):.1f}"


def supervised(folder: Path) -> None:
    """Clean accuracy (whole validation split, last checkpoint) and PGD accuracy per ε, over the seeds found."""
    found: dict[str, list[dict]] = defaultdict(list)
    for report in sorted(folder.glob("*-s*/report.json")):
        data = json.loads(report.read_text())
        if "robustness" in data:
            found[report.parent.name.rsplit("-s", 1)[0]].append(data)
    any_run = next(iter(next(iter(found.values()))))
    robust = next(iter(any_run["robustness"].values()))
    eps = [r["eps"] for r in robust["results"]]
    print(f"| method | seeds | clean ({any_run['last_validation']['examples']}) | "
          + " | ".join(f"PGD ε={e} ({robust['examples']})" for e in eps) + " | train s |")
    print("|---" * (4 + len(eps)) + "|")
    for method in [m for m in METHODS if m in found] + sorted(set(found) - set(METHODS)):
        runs = found[method]
        attacks = [next(iter(r["robustness"].values()))["results"] for r in runs]
        cells = [mean_std([r["last_validation"]["accuracy"] for r in runs])]
        cells += [mean_std([a[i]["accuracy"] for a in attacks]) for i in range(len(eps))]
        cells.append(f"{statistics.mean(r['train_seconds'] for r in runs):.0f}")
        print(f"| {method} | {len(runs)} | " + " | ".join(cells) + " |")


def sentence(folder: Path) -> None:
    """The STS table (Spearman × 100 per task and the average), the transfer table (accuracy per task) and the
    AdvSTS table (the attack's summary)."""
    for suite, key in (("sts", "spearman"), ("transfer", "accuracy")):
        results = {m: finished(folder / f"{m}.{suite}.json") for m in MODELS}
        results = {m: r for m, r in results.items() if r}
        if not results:
            continue
        tasks = list(next(iter(results.values()))["tasks"])
        print(f"\n| model | pooling | " + " | ".join(t.split(":")[0] for t in tasks) + " | avg |")
        print("|---" * (3 + len(tasks)) + "|")
        base = results.get(MODELS[0])
        for model, result in results.items():
            cells = []
            for task in tasks + ["average"]:
                value = result["average"] if task == "average" else result["tasks"][task][key]  # both × 100
                cell = f"{value:.2f}"
                if base is not None and model != MODELS[0]:
                    start = base["average"] if task == "average" else base["tasks"][task][key]
                    cell += f" ({value - start:+.2f})"
                cells.append(cell)
            print(f"| {model} | {result['pooling']} | " + " | ".join(cells) + " |")
    attacked = {m: finished(folder / f"{m}.advsts.json") for m in MODELS}
    attacked = {m: r for m, r in attacked.items() if r}
    if attacked:
        print("\n| model | pairs within margin | within margin under attack | attack success rate | "
              "Spearman before → after |")
        print("|---" * 5 + "|")
        for model, result in attacked.items():
            summary = result["summary"]
            print(f"| {model} | {summary['original_accuracy']:.0f} | {summary['accuracy_under_attack']:.0f} | "
                  f"{summary['attack_success_rate']:.1f} | {summary['spearman_before']:.2f} → "
                  f"{summary['spearman_after']:.2f} |")
        print(f"\n{next(iter(attacked.values()))['attack']}, {next(iter(attacked.values()))['summary']['examples']} pairs")


def text(folder: Path) -> None:
    """Clean accuracy (whole validation split, last checkpoint) and, per attack, the accuracy under attack and the
    attack success rate on the attacked sample; the attack's own description names its offline stand-ins."""
    summaries = {(m, a): finished(folder / f"{m}.{a}.json") for m in TEXT_MODELS for a in ATTACKS}
    summaries = {key: s for key, s in summaries.items() if s}
    attacks = [a for a in ATTACKS if any(key[1] == a for key in summaries)]
    first = {a: next(s for (_, b), s in summaries.items() if b == a) for a in attacks}
    print("| model | clean (all) | clean (sample) | " + " | ".join(f"{a}: acc / success" for a in attacks) + " |")
    print("|---" * (3 + len(attacks)) + "|")
    for model in TEXT_MODELS:
        report = folder / model / "report.json"
        if not report.is_file():
            continue
        clean = json.loads(report.read_text())["last_validation"]["accuracy"]
        cells = []
        for attack in attacks:
            summary = summaries.get((model, attack), {}).get("summary")
            cells.append(f"{summary['accuracy_under_attack']:.0f} / {summary['attack_success_rate']:.0f}"
                         if summary else "—")
        sample = next((s["summary"]["original_accuracy"] for (m, _), s in summaries.items() if m == model), None)
        print(f"| {model} | {100 * clean:.1f} | {sample if sample is not None else '—'} | " + " | ".join(cells) + " |")
    print()
    for attack in attacks:
        print(f"- {attack}: {first[attack]['attack']}, {first[attack]['summary']['examples']} examples")


if __name__ == "__main__":
    {"supervised": supervised, "sentence": sentence, "text": text}[sys.argv[1]](Path(sys.argv[2]))
