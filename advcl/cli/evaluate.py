from __future__ import annotations

from pathlib import Path

import typer

from advcl.cli.app import CHECKPOINT_OPTION, JSON_OPTION, app, print_json, print_table
from advcl.cli.attack import DEVICE_OPTION
from advcl.completion import choices, data_specs, robust_perturbers


@app.command(
    name="eval",
    epilog="Examples:\n\n"
    "  advcl eval --model runs/vanilla_sst2 --data sst2:validation\n\n"
    "  advcl eval --model runs/vanilla_sst2 --data sst2:test --json | jq .accuracy\n\n"
    "  advcl eval --model exported/ --data reviews.csv --text-column review --label-column stars\n\n"
    "  advcl eval --model runs/carl_agnews --data ag_news:test --robust pgd --eps 0.02,0.075,0.1\n\n"
    "  advcl eval --model exported/ --data sst2:validation --predictions preds.jsonl\n\n"
    "  advcl eval --model runs/simcse_sentences --suite sts\n\n"
    "  advcl eval --model runs/simcse_sentences --suite sts --max-length 256   # no truncation (SimCSE protocol)\n\n"
    "  advcl eval --model runs/simcse_sentences --suite transfer --tasks sst2,trec,mrpc --max-examples 2000\n\n"
    "  advcl eval --model runs/simcse --also runs/uscal --also all-MiniLM-L6-v2 --suite alignment --plot au.png\n\n"
    "  advcl eval --model all-MiniLM-L6-v2 --suite sts --tasks stsb:validation --pooling cls",
)
def eval_(
    model: str = typer.Option(..., "--model", "-m", help="Run folder, Hugging Face model folder, or hub name."),
    data: str = typer.Option(None, "--data", "-d", help="Catalogue split (sst2:validation) or a data file.",
                             autocompletion=data_specs),
    suite: str = typer.Option(None, "--suite", help="Sentence-embedding suite instead: sts, transfer or alignment.",
                              autocompletion=choices("sts", "transfer", "alignment")),
    tasks: str = typer.Option(None, "--tasks", help="Comma-separated datasets of the suite (default: the standard set)."),
    also: list[str] = typer.Option([], "--also", help="More models for --suite alignment (repeatable)."),
    pooling: str = typer.Option(None, "--pooling", help="--suite: cls or mean instead of each model's own pooling."),
    max_length: int = typer.Option(
        0, "--max-length", min=0, show_default=False,
        help="--suite: truncate sentences at this many tokens [default: where the model truncates; a run folder: "
        "its training length, e.g. 32 for the *_sentences recipes, where the SimCSE protocol truncates nothing].",
    ),
    protocol: str = typer.Option(
        "senteval", "--protocol", help="--suite transfer: senteval (C of the logistic regression tuned as SentEval "
        "tunes it, comparable with published tables) or fast (C = 1, no tuning).",
        autocompletion=choices("senteval", "fast"),
    ),
    plot: Path = typer.Option(None, "--plot", help="With --suite alignment: the models on the plane, as FILE.png "
                              "(and its PDF twin), FILE.pdf or FILE.svg; prints where it wrote."),
    checkpoint: str = CHECKPOINT_OPTION,
    batch_size: int = typer.Option(128, min=1, help="Examples per forward pass."),
    max_examples: int = typer.Option(
        0, min=0, help="Evaluate a seeded random subset of this size (0 = all); a run folder keeps it as DATA@N, "
        "beside the whole split's results. Suites: examples per task (sts, alignment: pairs; transfer: training)."
    ),
    text_column: str = typer.Option("text", help="Text column of a data file."),
    text_pair_column: str = typer.Option("", help="Second text column of a data file (pair tasks)."),
    label_column: str = typer.Option("label", help="Label column of a data file."),
    device: str = DEVICE_OPTION,
    robust: str = typer.Option(
        "", "--robust", help="Also attack the input embeddings with this perturber (pgd) and report robustness.",
        autocompletion=robust_perturbers,
    ),
    eps: str = typer.Option(None, "--eps", help="Comma-separated attack radii ε [default: 0.02,0.075,0.1]."),
    steps: int = typer.Option(None, "--steps", help="Attack steps K [default: 10]."),
    step_size: float = typer.Option(None, "--step-size", help="Attack step size α [default: 2.5·ε/K]."),
    norm: str = typer.Option(None, "--norm", help="Attack ball: l2 (per sentence) or linf [default: l2].",
                             autocompletion=choices("l2", "linf")),
    predictions: Path = typer.Option(
        None, "--predictions", help="Write each example's text, label and prediction here (.jsonl) "
        "[default for a run folder: RUN/predictions/DATA.jsonl]."
    ),
    as_json: bool = JSON_OPTION,
):
    """Accuracy, macro-F1 and Matthews correlation of a classifier on a dataset; or a sentence-embedding suite.

    --suite sts: cosine Spearman x100 on STS12-16 (all setting), STS-B test, SICK-R when present, and the average.
    --suite transfer: logistic regression on frozen embeddings (10-fold CV where a dataset has no test split), its C
    tuned as SentEval tunes it (on the validation split, or by cross-validation on train); --protocol fast fixes C.
    --suite alignment: alignment and uniformity (Wang & Isola 2020) on STS-B validation; --plot draws the plane.

    With --robust pgd, also the accuracy under an embedding-space PGD attack at each ε and the mean cosine and
    euclidean distance between clean and adversarial sentence representations (CARL, Tables 4-5); for a run
    folder these go into its report.json under "robustness", keyed by --data.

    Per-example predictions (for `advcl report`'s significance tests) go to --predictions; a run folder keeps
    them in RUN/predictions/ and its clean metrics in report.json under "evaluations", keyed by what was
    evaluated: DATA for the whole split, DATA@N for a --max-examples sample (so a sample never replaces it).
    """
    import torch

    from advcl.data.batching import encode
    from advcl.data.catalogue import load_data
    from advcl.data.dataset import Columns
    from advcl.runtime.devices import pick_device
    from advcl.runtime.progress import simple_progress, stderr
    from advcl.errors import BadInput
    from advcl.evaluation.classify import predict
    from advcl.evaluation.metrics import classification_metrics
    from advcl.evaluation.predictions import file_name, write_predictions
    from advcl.evaluation.robustness import DEFAULT_EPS, AttackSettings, parse_eps, robustness
    from advcl.evaluation.sampling import SAMPLE_SEED, describe_sample, sample_info, sample_key
    from advcl.runs import RunFolder, load_model

    if suite is not None:
        from advcl.cli.suites import run_suite

        if data is not None or robust:
            raise BadInput("--suite evaluates sentence embeddings on its own datasets: drop --data/--robust (use --tasks)")
        run_suite(suite, [model, *also], checkpoint, tasks, batch_size, max_examples, plot, device, as_json, protocol,
                  pooling, max_length)
        return
    if pooling is not None or max_length:
        raise BadInput("--pooling and --max-length go with --suite (a classifier reads its inputs as it was trained)")
    if data is None:
        raise BadInput("give --data SPLIT (a classification split or file) or --suite sts|transfer|alignment")
    if predictions is not None and predictions.suffix != ".jsonl":
        raise BadInput(f"--predictions {predictions} must end in .jsonl")
    attack_options = {"steps": steps, "step_size": step_size, "norm": norm}
    attack_options = {k: v for k, v in attack_options.items() if v is not None}
    if robust:
        settings = AttackSettings(robust, **attack_options)
        eps_values = parse_eps(eps) if eps is not None else list(DEFAULT_EPS)
    elif attack_options or eps is not None:
        raise BadInput("--eps, --steps, --step-size and --norm set the attack: add --robust pgd")
    loaded = load_model(model, checkpoint, require_head=True)
    dataset = load_data(data, Columns(text_column, text_pair_column, label_column), loaded.label_names)
    if not dataset.has_class_labels:
        raise BadInput(f"{data} has no class labels to evaluate against")
    if len(dataset.label_names) > len(loaded.label_names):
        raise BadInput(f"{data} has {len(dataset.label_names)} classes but the model predicts {len(loaded.label_names)}")
    total = len(dataset)
    dataset = dataset.sample(max_examples, SAMPLE_SEED)
    key = sample_key(data, len(dataset), total)  # a sample is kept beside, never over, the whole split's results
    sample = sample_info(len(dataset), total)
    dev = pick_device(device)
    loaded.model.to(dev)
    encoded = encode(dataset, loaded.tokenizer, loaded.max_length)
    with simple_progress("evaluating") as progress:
        predicted = predict(loaded.model, encoded, batch_size, dev, progress=progress)
    metrics = classification_metrics(torch.tensor(encoded.labels), predicted, len(loaded.label_names))
    result = {"model": model, "checkpoint": loaded.source, "data": data, "key": key, "sample": sample, **metrics}
    run = RunFolder(model) if RunFolder.is_run(model) else None
    if predictions is None and run is not None:
        predictions = run.path / "predictions" / file_name(key)
    if predictions is not None:
        write_predictions(predictions, dataset, predicted, loaded.label_names)
        result["predictions"] = str(predictions)
    if robust:
        with simple_progress(f"{robust} attack") as progress:
            result["robustness"] = robustness(loaded.model, encoded, eps_values, settings, batch_size, dev, progress)
    if run is not None:
        kept = predictions.resolve()  # relative to the run folder when inside it, so the folder can move
        kept = kept.relative_to(run.path.resolve()) if kept.is_relative_to(run.path.resolve()) else kept
        run.record({key: {"checkpoint": loaded.source, **metrics, "sample": sample, "predictions": str(kept)}},
                   "evaluations")
        if robust:
            run.record({key: {"checkpoint": loaded.source, **result["robustness"], "sample": sample}}, "robustness")
        if key != data:
            stderr.print(f"note: evaluated {describe_sample({'sample': sample})} examples: kept in {run.report} as "
                         f"{key!r}, beside (never over) the whole split's {data!r}", soft_wrap=True)
    if as_json:
        print_json(result)
        return
    print_table(
        f"{data} — {model}",
        ["metric", "value"],
        [["accuracy", metrics["accuracy"]], ["macro-F1", metrics["macro_f1"]], ["MCC", metrics["mcc"]],
         ["examples", describe_sample({"sample": sample})]],
    )
    if robust:
        attacked = result["robustness"]
        print_table(
            f"{robust} attack on the input embeddings ({attacked['norm']}, {attacked['steps']} steps)",
            ["ε", "step size", "accuracy", "cosine distance", "euclidean distance"],
            [["clean", "", attacked["clean_accuracy"], "", ""]]
            + [[f"{r['eps']:g}", f"{r['step_size']:.4g}", r["accuracy"], r["cosine_distance"], r["euclidean_distance"]]
               for r in attacked["results"]],
        )
