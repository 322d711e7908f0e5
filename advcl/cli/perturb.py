from __future__ import annotations

import copy
from pathlib import Path

import typer

from advcl.cli.app import CHECKPOINT_OPTION, JSON_OPTION, app, print_json, print_table
from advcl.cli.attack import (
    ATTACK_OPTION,
    BATCH_OPTION,
    DEVICE_OPTION,
    MAX_LENGTH_OPTION,
    MLM_OPTION,
    MODEL_OPTION,
    OVERWRITE_OPTION,
    QUERY_BUDGET_OPTION,
    RUNTIME_OPTION,
    SEED_OPTION,
    SHARD_OPTION,
)
from advcl.completion import choices, component_names, data_specs, robust_perturbers


EMBEDDING_SPACE_DEFAULTS = {"perturber": "pgd", "eps": 0.075}
TEXT_PANEL = "--space text (attack the words)"
EMBEDDING_PANEL = "--space embedding (attack the input embeddings)"


def _in_panel(option, panel: str):
    """A shared option of `advcl attack`, shown under ``panel`` in `advcl perturb --help`."""
    option = copy.copy(option)
    option.rich_help_panel = panel
    return option


@app.command(
    epilog="Examples:\n\n"
    "  advcl perturb --attack pwws --model runs/vanilla_sst2 --data sst2:train --output adv/ --num-examples 8000\n\n"
    "  ADVCL_DATA_DIR=. advcl eval --model runs/vanilla_sst2 --data adv:train   # the catalogue layout\n\n"
    "  advcl perturb -a pwws -m runs/vanilla_sst2 -d sst2:train -o adv/ --shard 3/4   # one of 4 jobs\n\n"
    "  advcl perturb --space embedding --perturber pgd --eps 0.1 --model runs/vanilla_sst2 --data sst2:validation "
    "--output pgd/",
)
def perturb(
    attack: str = typer.Option("", "--attack", "-a", help=ATTACK_OPTION.help, rich_help_panel=TEXT_PANEL,
                               autocompletion=component_names("attack")),
    model: str = MODEL_OPTION,
    data: str = typer.Option(..., "--data", "-d", help="Catalogue split (sst2:train) or a labelled data file.",
                             autocompletion=data_specs),
    output: Path = typer.Option(..., "--output", "-o", help="Dataset folder: OUTPUT/SPLIT.jsonl + meta.json "
                                "(--space embedding: OUTPUT/SPLIT.embedding.safetensors + .jsonl)."),
    space: str = typer.Option("text", "--space", autocompletion=choices("text", "embedding"), help="text: attack the text with --attack, write an adversarial "
                              "dataset; embedding: attack the input embeddings with --perturber, write δ per example."),
    num_examples: int = typer.Option(0, "--num-examples", "-n", min=0,
                                     help="Perturb a seeded random sample of this size (0 = all)."),
    seed: int = SEED_OPTION,
    shard: str = _in_panel(SHARD_OPTION, TEXT_PANEL),
    query_budget: int = _in_panel(QUERY_BUDGET_OPTION, TEXT_PANEL),
    model_batch_size: int = _in_panel(BATCH_OPTION, TEXT_PANEL),
    max_length: int = _in_panel(MAX_LENGTH_OPTION, TEXT_PANEL),
    mlm: str = _in_panel(MLM_OPTION, TEXT_PANEL),
    perturber: str = typer.Option(None, "--perturber", help="A perturber with PGD's options [default: pgd].",
                                  autocompletion=robust_perturbers, rich_help_panel=EMBEDDING_PANEL),
    eps: float = typer.Option(None, "--eps", help="The radius ε of the ball [default: 0.075].",
                              rich_help_panel=EMBEDDING_PANEL),
    steps: int = typer.Option(None, "--steps", min=1, help="Attack steps [default: 10].",
                              rich_help_panel=EMBEDDING_PANEL),
    step_size: float = typer.Option(None, "--step-size", help="Step α [default: 2.5·ε/steps].",
                                    rich_help_panel=EMBEDDING_PANEL),
    norm: str = typer.Option(None, "--norm", help="l2 or linf [default: l2].", rich_help_panel=EMBEDDING_PANEL,
                             autocompletion=choices("l2", "linf")),
    overwrite: bool = OVERWRITE_OPTION,
    checkpoint: str = CHECKPOINT_OPTION,
    device: str = DEVICE_OPTION,
    runtime: str = _in_panel(RUNTIME_OPTION, TEXT_PANEL),
    as_json: bool = JSON_OPTION,
):
    """Build an adversarial dataset: attack each example and save clean and adversarial text side by side.

    Writes OUTPUT/SPLIT.jsonl (SPLIT from --data: train for sst2:train) with one row per attacked example:
    text (clean), adv_text, label, attack and status (successful, failed or skipped; for the last two adv_text
    is the attack's final text, the clean one when skipped), plus text_pair / adv_text_pair for pair tasks; and
    OUTPUT/meta.json with the label names, so that recipes can name it as a dataset folder (data
    OUTPUT:SPLIT, like runs/adv/sst2_pwws:train), as a catalogue entry (ADVCL_DATA_DIR set to OUTPUT's parent,
    data OUTPUT-NAME:SPLIT) or as a file. The attack's own results (resumable, shardable) are kept in
    OUTPUT/SPLIT.attack/; the dataset is written once every example of the sample is done.

    With --space embedding, PGD (as in `advcl eval --robust`, at one ε) perturbs the input embeddings instead, for
    analysis: OUTPUT/SPLIT.embedding.safetensors holds per example δ (zero at padding), its norm, and the clean
    and adversarial sentence representations and logits; OUTPUT/SPLIT.embedding.jsonl indexes its rows (text,
    label, both predictions, ‖δ‖, cosine and euclidean distance). δ takes examples x length x hidden size floats:
    sample big splits with --num-examples.
    """
    from advcl.errors import BadInput

    embedding_options = {"perturber": perturber, "eps": eps, "steps": steps, "step_size": step_size, "norm": norm}
    embedding_options = {k: v for k, v in embedding_options.items() if v is not None}
    if space == "embedding":
        text_only = {"--attack": attack, "--shard": shard, "--query-budget": query_budget, "--mlm": mlm,
                     "--runtime": runtime != "auto"}
        given = [option for option, value in text_only.items() if value]
        if given:
            raise BadInput(f"{', '.join(given)} set a text attack: drop them for --space embedding")
        result = perturb_embeddings(model, data, output, split_of(data), num_examples, seed, model_batch_size,
                                    max_length, {**EMBEDDING_SPACE_DEFAULTS, **embedding_options}, overwrite,
                                    checkpoint, device)
        if as_json:
            print_json(result)
        else:
            print_table(f"{result['attack']} on the input embeddings — {data}", ["", "value"],
                        [[k, v] for k, v in result.items()])
        return
    if space != "text":
        raise BadInput(f"--space must be text or embedding, got {space!r}")
    if embedding_options:
        names = ", ".join("--" + k.replace("_", "-") for k in embedding_options)
        raise BadInput(f"{names} set an embedding-space attack: add --space embedding")
    if not attack:
        raise BadInput("give --attack NAME (a text attack), or --space embedding")
    from advcl.attacks.runner import Shard
    from advcl.attacks.session import execute, prepare, sample_rows

    split = split_of(data)
    job = prepare(attack, model, data, num_examples=num_examples, seed=seed, query_budget=query_budget,
                  model_batch_size=model_batch_size, max_length=max_length, mlm=mlm,
                  output=output / f"{split}.attack", default_output=None, shard=Shard.parse(shard),
                  overwrite=overwrite, checkpoint=checkpoint, device=device, runtime=runtime)
    execute(job)
    rows = sample_rows(job)
    result = {"attack": job.description, "data": data, "output": str(output), "split": split,
              "examples": len(job.dataset), "finished": len(job.done)}
    if rows is not None:
        counts = write_dataset(output, split, rows, job)
        result.update(file=str(output / f"{split}.jsonl"), **counts)
    if as_json:
        print_json(result)
        return
    print_table(f"{job.description} — adversarial {split} split", ["", "value"], [[k, v] for k, v in result.items()])
    if rows is None:
        from advcl.runtime.progress import stderr

        stderr.print(f"{len(job.done)} of {len(job.dataset)} examples attacked; {output / f'{split}.jsonl'} is "
                     "written when all are (finish the other shards, then run again without --shard)")


def split_of(data: str) -> str:
    """The split a --data names: train for sst2:train, the file's stem for a file."""
    from advcl.data.catalogue import is_file_spec, parse_spec

    return Path(data).stem if is_file_spec(data) else parse_spec(data)[1]


def write_dataset(output: Path, split: str, rows: list[dict], job) -> dict:
    """OUTPUT/SPLIT.jsonl in the catalogue layout and OUTPUT/meta.json (other splits' entries kept)."""
    import json

    from advcl.attacks.runner import write_json

    lines = []
    for row in rows:
        line = {"text": row["original_text"], "adv_text": row["perturbed_text"]}
        if "original_text_pair" in row:
            line.update(text_pair=row["original_text_pair"], adv_text_pair=row["perturbed_text_pair"])
        line.update(label=row["label"], attack=job.settings.attack, status=row["status"])
        lines.append(json.dumps(line, ensure_ascii=False) + "\n")
    target = output / f"{split}.jsonl"
    tmp = target.with_suffix(".jsonl.tmp")
    tmp.write_text("".join(lines), encoding="utf-8")
    tmp.replace(target)
    meta_path = output / "meta.json"
    meta = json.loads(meta_path.read_text()) if meta_path.is_file() else {}
    meta.update(name=output.resolve().name, task="pair-classification" if job.dataset.pairs else "classification",
                labels=job.dataset.label_names, source=f"advcl perturb: {job.description} on {job.settings.model}, "
                f"{job.settings.data}, seed {job.settings.seed}", license="as the source data", hub=None)
    meta.setdefault("splits", {})[split] = len(rows)
    write_json(meta_path, meta)
    counts = {s: sum(r["status"] == s for r in rows) for s in ("successful", "failed", "skipped")}
    return counts


def perturb_embeddings(model: str, data: str, output: Path, split: str, num_examples: int, seed: int, batch_size: int,
                       max_length: int, options: dict, overwrite: bool, checkpoint: str, device: str) -> dict:
    """``--space embedding``: attack, write OUTPUT/SPLIT.embedding.safetensors + .jsonl, and summarise."""
    import json

    import torch
    from safetensors.torch import save_file

    from advcl.data.batching import encode
    from advcl.data.catalogue import load_data
    from advcl.runtime.devices import pick_device
    from advcl.runtime.progress import simple_progress
    from advcl.errors import BadInput
    from advcl.evaluation.perturbations import embedding_perturbations
    from advcl.evaluation.robustness import AttackSettings, check_eps, representation_distances
    from advcl.runs import load_model

    eps = check_eps(options.pop("eps"))
    settings = AttackSettings(options.pop("perturber"), seed=seed, **options)
    tensors_path, index_path = output / f"{split}.embedding.safetensors", output / f"{split}.embedding.jsonl"
    if not overwrite and (tensors_path.exists() or index_path.exists()):
        raise BadInput(f"{tensors_path} already exists (pass --overwrite to replace it)")
    loaded = load_model(model, checkpoint, require_head=True)
    dataset = load_data(data, label_names=loaded.label_names)
    if dataset.labels is None or dataset.task == "sts":
        raise BadInput(f"{data} has no class labels: the attack ascends the loss of each example's true label")
    dataset = dataset.sample(num_examples, seed)  # labels outside the model's label set failed to load
    dev = pick_device(device)
    loaded.model.to(dev)
    encoded = encode(dataset, loaded.tokenizer, max_length or loaded.max_length)
    with simple_progress(f"{settings.attack} attack") as progress:
        found = embedding_perturbations(loaded.model, encoded, eps, settings, batch_size, dev, progress)
    cosine, euclidean = representation_distances(found["clean_sentence"], found["adversarial_sentence"])
    labels = torch.tensor(dataset.labels)
    clean_ok = found["clean_logits"].argmax(-1) == labels
    attacked_ok = clean_ok & (found["adversarial_logits"].argmax(-1) == labels)
    attack = {"attack": settings.attack, "eps": eps, "norm": settings.norm, "steps": settings.steps,
              "step_size": settings.step_size_for(eps), "seed": seed, "batch_size": batch_size}
    source = {"model": model, "checkpoint": loaded.source, "data": data, "pooling": loaded.pooling}
    output.mkdir(parents=True, exist_ok=True)
    save_file({k: v.contiguous() for k, v in found.items()}, tensors_path,
              metadata={k: json.dumps(v) for k, v in (attack | source).items()})
    lines = []
    for row in range(len(dataset)):
        line = {"row": row, "text": dataset.texts[row]}
        if dataset.pairs is not None:
            line["text_pair"] = dataset.pairs[row]
        line.update(label=dataset.labels[row], clean_prediction=int(found["clean_logits"][row].argmax()),
                    adversarial_prediction=int(found["adversarial_logits"][row].argmax()),
                    tokens=int(found["attention_mask"][row].sum()), delta_norm=found["delta_norm"][row].item(),
                    cosine_distance=cosine[row].item(), euclidean_distance=euclidean[row].item())
        lines.append(json.dumps(line, ensure_ascii=False) + "\n")
    index_path.write_text("".join(lines), encoding="utf-8")
    n = len(dataset)
    return {**attack, **source, "examples": n, "clean_accuracy": clean_ok.float().mean().item(),
            "accuracy_under_attack": attacked_ok.float().mean().item(),
            "mean_delta_norm": found["delta_norm"].mean().item(), "max_delta_norm": found["delta_norm"].max().item(),
            "cosine_distance": cosine.mean().item(), "euclidean_distance": euclidean.mean().item(),
            "tensors": str(tensors_path), "index": str(index_path)}
