from __future__ import annotations

import typer

from advcl.cli.app import JSON_OPTION, app, print_json, print_table


@app.command(
    name="eval",
    epilog="Examples:\n\n"
    "  advcl eval --model runs/vanilla_sst2 --data sst2:validation\n\n"
    "  advcl eval --model runs/vanilla_sst2 --data sst2:test --json | jq .accuracy\n\n"
    "  advcl eval --model exported/ --data reviews.csv --text-column review --label-column stars",
)
def eval_(
    model: str = typer.Option(..., "--model", "-m", help="Run folder, Hugging Face model folder, or hub name."),
    data: str = typer.Option(..., "--data", "-d", help="Catalogue split (sst2:validation) or a data file."),
    checkpoint: str = typer.Option("best", help="Which checkpoint of a run folder: best or last."),
    batch_size: int = typer.Option(128, min=1, help="Examples per forward pass."),
    max_examples: int = typer.Option(0, min=0, help="Evaluate a seeded random subset of this size (0 = all)."),
    text_column: str = typer.Option("text", help="Text column of a data file."),
    text_pair_column: str = typer.Option("", help="Second text column of a data file (pair tasks)."),
    label_column: str = typer.Option("label", help="Label column of a data file."),
    device: str = typer.Option("auto", help="auto, cpu or cuda."),
    as_json: bool = JSON_OPTION,
):
    """Accuracy, macro-F1 and Matthews correlation of a classifier on a dataset."""
    from advcl.data.batching import encode
    from advcl.data.catalogue import load_data
    from advcl.data.dataset import Columns
    from advcl.engine.devices import pick_device
    from advcl.engine.progress import simple_progress
    from advcl.errors import BadInput
    from advcl.evaluation.classify import evaluate
    from advcl.runs import load_model

    if checkpoint not in ("best", "last"):
        raise BadInput(f"--checkpoint must be best or last, got {checkpoint!r}")
    loaded = load_model(model, checkpoint, require_head=True)
    dataset = load_data(data, Columns(text_column, text_pair_column, label_column), loaded.label_names)
    if dataset.labels is None or dataset.task == "sts":
        raise BadInput(f"{data} has no class labels to evaluate against")
    if len(dataset.label_names) > len(loaded.label_names):
        raise BadInput(f"{data} has {len(dataset.label_names)} classes but the model predicts {len(loaded.label_names)}")
    dataset = dataset.sample(max_examples, 0)
    dev = pick_device(device)
    loaded.model.to(dev)
    with simple_progress("evaluating") as progress:
        metrics = evaluate(
            loaded.model, encode(dataset, loaded.tokenizer, loaded.max_length), len(loaded.label_names),
            batch_size, dev, progress=progress,
        )
    result = {"model": model, "checkpoint": loaded.source, "data": data, **metrics}
    if as_json:
        print_json(result)
        return
    print_table(
        f"{data} — {model}",
        ["metric", "value"],
        [["accuracy", metrics["accuracy"]], ["macro-F1", metrics["macro_f1"]], ["MCC", metrics["mcc"]],
         ["examples", metrics["examples"]]],
    )
