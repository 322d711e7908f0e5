"""The adversarial dataset ``advcl perturb`` writes from a finished text attack: OUTPUT/SPLIT.jsonl rows with
``text`` / ``adv_text`` (and the pair columns), the label, the attack and its status, in the catalogue layout a
recipe's ``data.adv_text_column`` and ``data.adv_statuses`` read (taichi, ada), and OUTPUT/meta.json."""

from __future__ import annotations

from pathlib import Path


def write_dataset(output: Path, split: str, rows: list[dict], job) -> dict:
    """OUTPUT/SPLIT.jsonl in the catalogue layout and OUTPUT/meta.json (other splits' entries kept), from the rows
    of a finished attack ``job`` (:class:`advcl.attacks.session.Job`); returns the count of each status."""
    import json

    from advcl.attacks.runner import write_json
    from advcl.runtime.atomic import write_text

    lines = []
    for row in rows:
        line = {"text": row["original_text"], "adv_text": row["perturbed_text"]}
        if "original_text_pair" in row:
            line.update(text_pair=row["original_text_pair"], adv_text_pair=row["perturbed_text_pair"])
        line.update(label=row["label"], attack=job.settings.attack, status=row["status"])
        lines.append(json.dumps(line, ensure_ascii=False) + "\n")
    write_text(output / f"{split}.jsonl", "".join(lines))
    meta_path = output / "meta.json"
    meta = json.loads(meta_path.read_text()) if meta_path.is_file() else {}
    meta.update(name=output.resolve().name, task=job.dataset.task.name,
                labels=job.dataset.label_names, source=f"advcl perturb: {job.description} on {job.settings.model}, "
                f"{job.settings.data}, seed {job.settings.seed}", license="as the source data", hub=None)
    meta.setdefault("splits", {})[split] = len(rows)
    write_json(meta_path, meta)
    counts = {s: sum(r["status"] == s for r in rows) for s in ("successful", "failed", "skipped")}
    return counts
