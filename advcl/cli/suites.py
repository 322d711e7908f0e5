"""``advcl eval --suite sts|transfer|alignment``: sentence-embedding evaluations (SimCSE / SentEval protocols)."""

from __future__ import annotations

from pathlib import Path

from advcl.cli.app import print_json, print_table
from advcl.errors import BadInput
from advcl.evaluation.sampling import describe_sample

SUITES = ("sts", "transfer", "alignment")
DEFAULT_TRANSFER_TASKS = "sst2,trec,mrpc"


def run_suite(suite: str, models: list[str], checkpoint: str, tasks: str | None, batch_size: int,
              max_examples: int, plot: Path | None, device: str, as_json: bool, protocol: str = "senteval",
              pooling: str | None = None, max_length: int = 0) -> None:
    """Score each model on the suite and print (or ``--json``) the results. Sentences are truncated at
    ``max_length`` tokens, or by default where the model truncates (a run folder: its training length; a model
    folder: its sentence-transformers limit). A run folder keeps the results in its report: under the suite's name,
    ``@N`` appended for a sampled suite, `` (cls pooling)`` for a ``pooling`` that replaces the model's own and
    `` (max length N)`` for a ``max_length`` that replaces its own."""
    from advcl.modeling.pooling import POOLINGS
    from advcl.runtime.devices import pick_device
    from advcl.runtime.progress import simple_progress, stderr
    from advcl.runs import RunFolder, load_model

    if suite not in SUITES:
        raise BadInput(f"--suite must be one of {', '.join(SUITES)}, got {suite!r}")
    if pooling is not None and pooling not in POOLINGS:
        raise BadInput(f"--pooling must be one of {', '.join(POOLINGS)}, got {pooling!r}")
    from advcl.evaluation.transfer import PROTOCOLS

    if protocol not in PROTOCOLS:
        raise BadInput(f"--protocol must be one of {', '.join(PROTOCOLS)}, got {protocol!r}")
    if plot is not None:
        from advcl.evaluation.alignment import PLOT_FORMATS

        if suite != "alignment" or plot.suffix.lower() not in PLOT_FORMATS:
            raise BadInput("--plot FILE.png (or .pdf, .svg) goes with --suite alignment")
    if len(models) > 1 and suite != "alignment":
        raise BadInput("--also compares several models on the alignment-uniformity plane: use --suite alignment")
    prepared = _prepare(suite, tasks, max_examples)  # bad data fails before any model is loaded
    dev = pick_device(device)
    results = {}
    for name in models:
        loaded = load_model(name, checkpoint, pooling=pooling)
        loaded.model.to(dev)
        length = loaded.length(max_length)
        with simple_progress(f"{suite}: {name}") as progress:
            results[name] = _score(suite, prepared, loaded, length, batch_size, max_examples, dev, progress,
                                   protocol) | {"max_length": length}
        if RunFolder.is_run(name):  # a sampled suite is kept beside, never over, the whole one
            run = RunFolder(name)
            key = (suite if not _sampled(results[name]) else f"{suite}@{max_examples}") + (
                f" ({pooling} pooling)" if pooling is not None else "") + (
                f" (max length {max_length})" if max_length else "")
            run.record({key: {"checkpoint": loaded.source, **results[name]}})
            if _sampled(results[name]):
                stderr.print(f"note: --max-examples {max_examples} sampled the suite: kept in {run.report} as "
                             f"{key!r}, beside (never over) the whole suite's {suite!r}", soft_wrap=True)
    if plot is not None:
        from advcl.evaluation.alignment import plot_alignment_uniformity

        written = plot_alignment_uniformity(results, plot)
        stderr.print(f"wrote {' and '.join(map(str, written))}", soft_wrap=True)
    if as_json:
        print_json(results if len(models) > 1 else results[models[0]])
        return
    for name, result in results.items():
        _print(suite, name, result)


def _prepare(suite: str, tasks: str | None, max_examples: int):
    from advcl.data.catalogue import load_data
    from advcl.evaluation import alignment, sts, transfer
    from advcl.evaluation.sampling import SAMPLE_SEED, sample_info

    names = [t.strip() for t in tasks.split(",") if t.strip()] if tasks else None
    if suite == "sts":
        return names or list(sts.STS_SUITE)
    if suite == "transfer":
        return [transfer.load_transfer_task(t, max_train=max_examples) for t in names or DEFAULT_TRANSFER_TASKS.split(",")]
    data = load_data((names or [alignment.DEFAULT_DATA])[0])
    sampled = data.sample(max_examples, SAMPLE_SEED)
    return sampled, sample_info(len(sampled), len(data))


def _sampled(result: dict) -> bool:
    """Whether any part of a suite's result was computed on a sample rather than a whole split."""
    parts = [result, *result.get("tasks", {}).values()]
    return any((part.get("sample") or {}).get("seed") is not None for part in parts)


def _score(suite: str, prepared, loaded, max_length: int, batch_size: int, max_examples: int, device, progress,
           protocol: str) -> dict:
    from advcl.evaluation import alignment, sts, transfer

    args = (loaded.model, loaded.tokenizer)
    if suite == "sts":
        return sts.sts_suite(*args, max_length, batch_size, device, prepared, progress, max_examples)
    if suite == "transfer":
        return transfer.transfer_suite(*args, prepared, max_length, batch_size, device, progress=progress,
                                       protocol=protocol)
    data, sample = prepared
    return alignment.alignment_uniformity(*args, data, max_length, batch_size, device,
                                          progress=progress) | {"sample": sample}


def _print(suite: str, name: str, result: dict) -> None:
    if suite == "alignment":
        print_table(f"alignment and uniformity — {name} ({result['pooling']} pooling)", ["measure", "value"],
                    [["alignment", result["alignment"]], ["uniformity", result["uniformity"]],
                     ["positive pairs", result["positive_pairs"]], ["sentences", result["sentences"]],
                     ["pairs", describe_sample(result)]])
        return
    unit = "Spearman x100" if suite == "sts" else "accuracy x100"
    key, counted = ("spearman", "pairs") if suite == "sts" else ("accuracy", "training examples")
    rows = [[task, score[key], describe_sample(score)] for task, score in result["tasks"].items()]
    rows += [[task, f"skipped: {note}", ""] for task, note in result.get("skipped", {}).items()]
    rows.append(["average", result["average"], ""])
    protocol = f", {result['protocol']} protocol" if "protocol" in result else ""
    print_table(f"{suite} — {name} ({result['pooling']} pooling{protocol})", ["task", unit, counted], rows)
