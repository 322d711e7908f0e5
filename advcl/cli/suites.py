"""``advcl eval --suite sts|transfer|alignment``: sentence-embedding evaluations (SimCSE / SentEval protocols)."""

from __future__ import annotations

from pathlib import Path

from advcl.cli.app import print_json, print_table
from advcl.errors import BadInput

SUITES = ("sts", "transfer", "alignment")
DEFAULT_TRANSFER_TASKS = "sst2,trec,mrpc"


def run_suite(suite: str, models: list[str], checkpoint: str, tasks: str | None, batch_size: int,
              max_examples: int, plot: Path | None, device: str, as_json: bool) -> None:
    from advcl.engine.devices import pick_device
    from advcl.engine.progress import simple_progress
    from advcl.runs import RunFolder, load_model

    if suite not in SUITES:
        raise BadInput(f"--suite must be one of {', '.join(SUITES)}, got {suite!r}")
    if plot is not None and (suite != "alignment" or plot.suffix.lower() != ".png"):
        raise BadInput("--plot FILE.png goes with --suite alignment")
    if len(models) > 1 and suite != "alignment":
        raise BadInput("--also compares several models on the alignment-uniformity plane: use --suite alignment")
    prepared = _prepare(suite, tasks, max_examples)  # bad data fails before any model is loaded
    dev = pick_device(device)
    results = {}
    for name in models:
        loaded = load_model(name, checkpoint)
        loaded.model.to(dev)
        with simple_progress(f"{suite}: {name}") as progress:
            results[name] = _score(suite, prepared, loaded, batch_size, dev, progress)
        if RunFolder.is_run(name):
            run = RunFolder(name)
            run.write_report(run.read_report() | {suite: {"checkpoint": loaded.source, **results[name]}})
    if plot is not None:
        from advcl.evaluation.alignment import plot_alignment_uniformity

        plot_alignment_uniformity(results, plot)
    if as_json:
        print_json(results if len(models) > 1 else results[models[0]])
        return
    for name, result in results.items():
        _print(suite, name, result)


def _prepare(suite: str, tasks: str | None, max_examples: int):
    from advcl.data.catalogue import load_data
    from advcl.evaluation import alignment, sts, transfer

    names = [t.strip() for t in tasks.split(",") if t.strip()] if tasks else None
    if suite == "sts":
        return names or list(sts.STS_SUITE)
    if suite == "transfer":
        return [transfer.load_transfer_task(t, max_train=max_examples) for t in names or DEFAULT_TRANSFER_TASKS.split(",")]
    return load_data((names or [alignment.DEFAULT_DATA])[0])


def _score(suite: str, prepared, loaded, batch_size: int, device, progress) -> dict:
    from advcl.evaluation import alignment, sts, transfer

    args = (loaded.model, loaded.tokenizer)
    if suite == "sts":
        return sts.sts_suite(*args, loaded.max_length, batch_size, device, prepared, progress)
    if suite == "transfer":
        return transfer.transfer_suite(*args, prepared, loaded.max_length, batch_size, device, progress=progress)
    return alignment.alignment_uniformity(*args, prepared, loaded.max_length, batch_size, device, progress=progress)


def _print(suite: str, name: str, result: dict) -> None:
    if suite == "alignment":
        print_table(f"alignment and uniformity — {name} ({result['pooling']} pooling)", ["measure", "value"],
                    [["alignment", result["alignment"]], ["uniformity", result["uniformity"]],
                     ["positive pairs", result["positive_pairs"]], ["sentences", result["sentences"]]])
        return
    unit = "Spearman x100" if suite == "sts" else "accuracy x100"
    key = "spearman" if suite == "sts" else "accuracy"
    rows = [[task, score[key]] for task, score in result["tasks"].items()]
    rows += [[task, f"skipped: {note}"] for task, note in result.get("skipped", {}).items()]
    rows.append(["average", result["average"]])
    print_table(f"{suite} — {name} ({result['pooling']} pooling)", ["task", unit], rows)
