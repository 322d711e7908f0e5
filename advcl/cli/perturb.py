from __future__ import annotations

from pathlib import Path

import typer

from advcl.cli.app import JSON_OPTION, app, print_json, print_table
from advcl.cli.attack import (
    ATTACK_OPTION,
    BATCH_OPTION,
    CHECKPOINT_OPTION,
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


@app.command(
    epilog="Examples:\n\n"
    "  advcl perturb --attack pwws --model runs/vanilla_sst2 --data sst2:train --output adv/ --num-examples 8000\n\n"
    "  ADVCL_DATA_DIR=. advcl eval --model runs/vanilla_sst2 --data adv:train   # the catalogue layout\n\n"
    "  advcl perturb -a pwws -m runs/vanilla_sst2 -d sst2:train -o adv/ --shard 3/4   # one of 4 jobs",
)
def perturb(
    attack: str = ATTACK_OPTION,
    model: str = MODEL_OPTION,
    data: str = typer.Option(..., "--data", "-d", help="Catalogue split (sst2:train) or a labelled data file."),
    output: Path = typer.Option(..., "--output", "-o", help="Dataset folder: OUTPUT/SPLIT.jsonl + meta.json."),
    num_examples: int = typer.Option(0, "--num-examples", "-n", min=0,
                                     help="Perturb a seeded random sample of this size (0 = all)."),
    seed: int = SEED_OPTION,
    shard: str = SHARD_OPTION,
    query_budget: int = QUERY_BUDGET_OPTION,
    model_batch_size: int = BATCH_OPTION,
    max_length: int = MAX_LENGTH_OPTION,
    mlm: str = MLM_OPTION,
    overwrite: bool = OVERWRITE_OPTION,
    checkpoint: str = CHECKPOINT_OPTION,
    device: str = DEVICE_OPTION,
    runtime: str = RUNTIME_OPTION,
    as_json: bool = JSON_OPTION,
):
    """Build an adversarial dataset: attack each example and save clean and adversarial text side by side.

    Writes OUTPUT/SPLIT.jsonl (SPLIT from --data: train for sst2:train) with one row per attacked example:
    text (clean), adv_text, label, attack and status (successful, failed or skipped; for the last two adv_text
    is the attack's final text, the clean one when skipped), plus text_pair / adv_text_pair for pair tasks; and
    OUTPUT/meta.json with the label names, so that recipes can name it as a catalogue entry (ADVCL_DATA_DIR set
    to OUTPUT's parent, data OUTPUT-NAME:SPLIT) or as a file. The attack's own results (resumable, shardable)
    are kept in OUTPUT/SPLIT.attack/; the dataset is written once every example of the sample is done.
    """
    from advcl.attacks.runner import Shard
    from advcl.attacks.session import execute, prepare, sample_rows
    from advcl.data.catalogue import is_file_spec, parse_spec
    from advcl.errors import BadInput

    if checkpoint not in ("best", "last"):
        raise BadInput(f"--checkpoint must be best or last, got {checkpoint!r}")
    split = Path(data).stem if is_file_spec(data) else parse_spec(data)[1]
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
        from advcl.engine.progress import stderr

        stderr.print(f"{len(job.done)} of {len(job.dataset)} examples attacked; {output / f'{split}.jsonl'} is "
                     "written when all are (finish the other shards, then run again without --shard)")


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
