from __future__ import annotations

from pathlib import Path

import typer

from advcl.cli.app import CHECKPOINT_OPTION, JSON_OPTION, app, print_json, print_table
from advcl.completion import choices, component_names, data_specs

# Options shared with `advcl perturb` (advcl/cli/perturb.py).
ATTACK_OPTION = typer.Option(..., "--attack", "-a", help="textfooler, pwws, textbugger, deepwordbug, bae, bert-attack, "
                             "pruthi, iga, or an attack a plugin registers (`advcl plugins`).",
                             autocompletion=component_names("attack"))
MODEL_OPTION = typer.Option(..., "--model", "-m", help="Run folder or Hugging Face classifier folder.")
SEED_OPTION = typer.Option(0, help="Seed of the sample and of each example's attack.")
QUERY_BUDGET_OPTION = typer.Option(0, "--query-budget", min=0, help="Model queries per example (0 = unlimited).")
BATCH_OPTION = typer.Option(32, "--model-batch-size", min=1, help="Queries per forward pass.")
MAX_LENGTH_OPTION = typer.Option(0, "--max-length", min=0, show_default=False,
                                 help="Truncate queries to this many tokens [default: the model's training length].")
MLM_OPTION = typer.Option("", "--mlm", help="An mlm run folder (recipes/mlm_head_sentences.toml) or a local "
                                             "Hugging Face masked-LM folder, for bae and bert-attack.")
SHARD_OPTION = typer.Option(None, "--shard", help="Attack only shard K of N of the sample (K/N, like 2/8).")
OVERWRITE_OPTION = typer.Option(False, "--overwrite", help="Discard the folder's earlier results instead of resuming.")
DEVICE_OPTION = typer.Option("auto", help="auto, cpu or cuda.", autocompletion=choices("auto", "cpu", "cuda"))
RUNTIME_OPTION = typer.Option("auto", autocompletion=choices("auto", "onnx", "torch"),
                              help="What runs the victim: onnx (onnxruntime, CPU; about twice as fast), "
                              "torch, or auto (onnx where installed, on CPU).")


def default_folder(model: str, settings) -> Path:
    """RUN/attacks/NAME for a run folder, else attacks/MODEL-NAME in the working directory."""
    from advcl.runs import RunFolder

    data = settings.data.replace(":", "-") if ":" in settings.data else Path(settings.data).stem
    name = f"{settings.attack}-{data}-n{settings.num_examples}-seed{settings.seed}"
    if RunFolder.is_run(model):
        return Path(model) / "attacks" / name
    return Path("attacks") / f"{Path(model).name}-{name}"


@app.command(
    epilog="Examples:\n\n"
    "  advcl attack --attack textfooler --model runs/vanilla_sst2 --data sst2:test --num-examples 1000 --seed 0\n\n"
    "  advcl attack -a pwws -m runs/vanilla_sst2 -d sst2:test --num-examples 1000 --shard 2/8   # one of 8 jobs\n\n"
    "  advcl attack -a bae -m runs/vanilla_sst2 -d sst2:test --mlm runs/mlm_head_sentences --json "
    "| jq .summary.attack_success_rate\n\n"
    "  advcl attack -a textfooler -m runs/simcse_sentences -d stsb:test -n 100 --seed 0   # AdvSTS",
)
def attack(
    attack: str = ATTACK_OPTION,
    model: str = typer.Option(..., "--model", "-m", help="Run folder or Hugging Face classifier folder; for an STS "
                              "split, any encoder (also a sentence-transformers folder or name)."),
    data: str = typer.Option(..., "--data", "-d", autocompletion=data_specs, help="Catalogue split (sst2:test) or a labelled data file; an "
                             "STS split (stsb:test, sts12:test) runs AdvSTS."),
    num_examples: int = typer.Option(1000, "--num-examples", "-n", min=0,
                                     help="Attack a seeded random sample of this size (0 = all)."),
    seed: int = SEED_OPTION,
    output: Path = typer.Option(None, "--output", "-o", help="Results folder [default: RUN/attacks/NAME, or "
                                "attacks/NAME]. Run again on it to resume; shards share it."),
    shard: str = SHARD_OPTION,
    query_budget: int = QUERY_BUDGET_OPTION,
    model_batch_size: int = BATCH_OPTION,
    max_length: int = MAX_LENGTH_OPTION,
    mlm: str = MLM_OPTION,
    overwrite: bool = OVERWRITE_OPTION,
    checkpoint: str = CHECKPOINT_OPTION,
    device: str = DEVICE_OPTION,
    runtime: str = RUNTIME_OPTION,
    sts_margin: float = typer.Option(None, "--sts-margin", help="AdvSTS: the deviation |predicted - gold score| "
                                     "at which an attack succeeds [default: 20% of the declared score range, 1.0 "
                                     "on 0-5]."),
    as_json: bool = JSON_OPTION,
):
    """Attack a classifier with a TextAttack recipe, offline, and print TextAttack's summary.

    Every result (texts before and after, gold and predicted labels, queries, status) is appended to
    results.jsonl in the output folder as soon as it is finished: an interrupted attack, run again, continues
    where it stopped, and shards (--shard K/N, each its own job) fill the same folder; run without --shard
    afterwards for the summary of the whole sample. Resources come from `advcl resources build`; the report
    names what stood in for the published ones (counter-fitted GloVe-50d, MiniLM for the Universal Sentence
    Encoder). For a run folder, a complete attack is also recorded in its report.json under "attacks".

    AdvSTS (RobustSentEmbed, Rafiei Asl et al. 2024): when --data is an STS split, the attack perturbs either
    sentence of each pair so that the model's predicted similarity, low + (high - low) * max(cosine, 0) on the
    declared score range, moves at least --sts-margin away from the gold score; pairs already that far off are
    skipped. The summary's accuracies are then the shares of pairs within the margin, and it adds the Spearman x100
    of the sample before and after the attack. See docs/attacks.md.
    """
    from advcl.attacks.runner import Shard, summarise, write_json
    from advcl.attacks.session import AttackRequest, execute, prepare, sample_rows
    from advcl.runs import RunFolder

    shard_spec = Shard.parse(shard)
    job = prepare(AttackRequest(attack, model, data, num_examples, seed, query_budget, model_batch_size, max_length,
                                mlm=mlm, output=output, default_output=lambda settings: default_folder(model, settings),
                                shard=shard_spec, overwrite=overwrite, checkpoint=checkpoint, device=device,
                                runtime=runtime, advsts=True, sts_margin=sts_margin))
    rows = execute(job)
    whole = sample_rows(job) if shard_spec.count == 1 else None
    result = {**job.settings.as_dict(), "attack": job.description, "model": model, "checkpoint": job.settings.model,
              "folder": str(job.folder), "shard": shard or None, "runtime": job.runtime, "summary": summarise(rows, job.task),
              **job.task.report_extra}
    if whole is not None:
        write_json(job.folder / "summary.json", result)
        if RunFolder.is_run(model):
            RunFolder(model).record({f"{attack}:{data}": {k: result[k] for k in ("attack", "folder", "summary")}},
                                    "attacks")
    if as_json:
        print_json(result)
        return
    summary = result["summary"]
    title = (f"{job.description} — {model} on {data}" + (f", shard {shard}" if shard else "")
             + job.task.settings_note(job.settings.options))
    print_table(title, ["metric", "value"], [[label, "n/a" if summary.get(key) is None else f"{summary[key]:g}"]
                                             for key, label in job.task.summary_labels])
