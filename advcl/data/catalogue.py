"""Dataset names: ``name:split`` resolves to ``$ADVCL_DATA_DIR/<name>/<split>.jsonl`` (+ meta.json),
else to the hub entry of the catalogue through ``datasets``; anything with a file suffix is a user file.

A name with a path separator is a dataset folder in the same layout wherever it lies, such as the one
``advcl perturb --output runs/adv/sst2_pwws`` writes: ``runs/adv/sst2_pwws:train``."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, replace
from functools import cache
from importlib import resources
from pathlib import Path

from advcl.data.dataset import Columns, ScoreRange, TextDataset, build_dataset, same_classes
from advcl.data.hf_datasets import load_hf_data, resolve_spec
from advcl.data.readers import FILE_SUFFIXES, DataError, iter_rows
from advcl.data.tasks import DataTask, task_named, task_of_columns

DATA_DIR_ENV = "ADVCL_DATA_DIR"

# The adversarial twins of text and text_pair (what `advcl perturb` writes next to them).
ADVERSARIAL_COLUMNS = ("adv_text", "adv_text_pair")
ADVERSARIAL_STATUS = "status"  # the attack outcome column `advcl perturb` writes


def data_dir() -> Path:
    return Path(os.environ.get(DATA_DIR_ENV, "data"))


@cache
def builtin_catalogue() -> dict:
    return json.loads(resources.files("advcl.data").joinpath("catalogue.json").read_text())


def catalogue_names() -> list[str]:
    local = {p.parent.name for p in data_dir().glob("*/meta.json")}
    return sorted(set(builtin_catalogue()) | local)


def is_folder_name(name: str) -> bool:
    return "/" in name or os.sep in name


def dataset_folder(name: str) -> Path:
    """``$ADVCL_DATA_DIR/<name>`` for a catalogue name; the folder itself for a name with a path separator."""
    return Path(name) if is_folder_name(name) else data_dir() / name


def meta_for(name: str) -> dict | None:
    """The dataset's meta.json when present locally, else the built-in catalogue's entry."""
    local = dataset_folder(name) / "meta.json"
    if local.is_file():
        try:
            meta = json.loads(local.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise DataError(f"{local}: not valid JSON ({exc})") from None
        check_meta(meta, local)
        return meta
    return builtin_catalogue().get(name)


def check_meta(meta, path: Path) -> None:
    """The fields of a meta.json that advcl reads, each of the type it needs; a mistake names the file and field."""
    if not isinstance(meta, dict):
        raise DataError(f"{path}: must be a JSON object, got a {type(meta).__name__}")
    for key in ("task", "name"):
        if key in meta and not isinstance(meta[key], str):
            raise DataError(f"{path}: '{key}' must be a string, got {meta[key]!r}")
    labels = meta.get("labels")
    if labels is not None and (not isinstance(labels, list) or not all(isinstance(v, str) and v for v in labels)
                               or len(set(labels)) != len(labels)):
        raise DataError(f"{path}: 'labels' must be a list of distinct label names, got {labels!r}")
    for where, holder in (("score_range", meta), ("hub.score_range", meta.get("hub") or {})):
        if not isinstance(holder, dict):
            raise DataError(f"{path}: 'hub' must be an object, got {holder!r}")
        declared = holder.get("score_range")
        if declared is None:
            continue
        numbers = isinstance(declared, list) and len(declared) == 2 and all(
            isinstance(v, (int, float)) and not isinstance(v, bool) for v in declared)
        if not numbers or not declared[0] < declared[1]:
            raise DataError(f"{path}: '{where}' must be [low, high] with low < high, got {declared!r}")


@dataclass(frozen=True)
class Resolution:
    """Where a catalogue entry's split comes from: 'local', 'hub' or 'missing'."""

    kind: str
    where: str


def resolve(name: str, split: str) -> Resolution:
    local = dataset_folder(name) / f"{split}.jsonl"
    if local.is_file():
        return Resolution("local", str(local))
    meta = meta_for(name)
    hub = (meta or {}).get("hub")
    if hub:
        return Resolution("hub", f"{hub['path']}" + (f" ({hub['name']})" if hub.get("name") else ""))
    return Resolution("missing", str(local))


def is_file_spec(spec: str) -> bool:
    return Path(spec).suffix.lower() in FILE_SUFFIXES


def parse_spec(spec: str) -> tuple[str, str]:
    name, sep, split = spec.partition(":")
    if not sep or not name or not split:
        raise DataError(
            f"data '{spec}' must be a catalogue name with a split (like sst2:train) "
            f"or a file ending in {', '.join(FILE_SUFFIXES)}"
        )
    return name, split


def datasets_source(spec: str):
    """What :mod:`advcl.data.hf_datasets` reads ``spec`` from (a hub dataset, a ``save_to_disk`` folder, a
    JSON-array file), or None; a catalogue name always wins (the offline catalogue first)."""
    return resolve_spec(spec) if meta_for(spec.partition(":")[0]) is None else None


def load_data(spec: str, columns: Columns | None = None, label_names: list[str] | None = None,
              holder: str = "the model") -> TextDataset:
    """Load a catalogue split (``sst2:validation``) or a user file with the given ``columns``.

    A catalogue split takes its text and label fields from the catalogue layout; of ``columns`` it uses only
    whether to read the adversarial texts (``adv_text`` set), which it reads from ``adv_text`` / ``adv_text_pair``,
    and whether to read their attack statuses (``adv_status`` set), from ``status``.

    After the catalogue, a hub dataset (``hf:PATH[:CONFIG]:SPLIT``), a ``datasets.save_to_disk`` folder or a
    JSON-array file is read through :mod:`advcl.data.hf_datasets`.

    ``label_names`` orders the classes (those of a model, of a recipe's ``data.labels``, of a training split: the
    ``holder`` an error names); a dataset that declares another number of classes is refused.
    """
    source = datasets_source(spec)
    if source is not None:
        return load_hf_data(source, columns, label_names, holder)
    if is_file_spec(spec):
        path = Path(spec)
        columns = columns or Columns()
        rows = ((f"{path}:{n}", row) for n, row in iter_rows(path))
        return build_dataset(str(path), task_of_columns(columns), rows, columns, label_names)
    name, split = parse_spec(spec)
    meta = meta_for(name)
    if meta is None and is_folder_name(name):
        raise DataError(f"dataset folder {name} not found: no {dataset_folder(name) / 'meta.json'} "
                        "(`advcl perturb --output FOLDER` writes one)")
    if meta is None:
        from difflib import get_close_matches

        close = get_close_matches(name, catalogue_names(), n=3, cutoff=0.5)
        hint = f" (did you mean {', '.join(close)}?)" if close else ""
        raise DataError(f"unknown dataset '{name}'{hint}; `advcl data` lists the catalogue of {data_dir()}")
    task = meta_task(meta, name)
    label_names = same_classes(label_names, meta.get("labels"), name, holder) if label_names else meta.get("labels")
    local = dataset_folder(name) / f"{split}.jsonl"
    if local.is_file():
        rows = ((f"{local}:{n}", row) for n, row in iter_rows(local))
    else:
        rows = _hub_rows(name, split, meta, local, task)
    fields = task.columns
    if columns is not None and columns.adv_text:
        adv_text, adv_text_pair = ADVERSARIAL_COLUMNS
        fields = replace(fields, adv_text=adv_text, adv_text_pair=adv_text_pair if fields.text_pair else "",
                         adv_status=ADVERSARIAL_STATUS if columns.adv_status else "")
    score_range = declared_score_range(meta, name) if task.scored else None
    return build_dataset(spec, task, rows, fields, label_names, score_range)


def meta_task(meta: dict, name: str) -> DataTask:
    """The task a dataset's meta.json names (classification when it names none)."""
    return task_named(meta.get("task", "classification"), name)


def task_of_spec(spec: str) -> DataTask:
    """The task ``--data`` will load as, known before it is read (a command may need it to choose its model): a
    catalogue or dataset-folder entry's meta.json task; for a user file or a hub dataset, the task of the default
    columns (text, label), as :func:`load_data` without ``columns`` reads them."""
    if is_file_spec(spec) or datasets_source(spec) is not None:
        return task_of_columns(Columns())
    name = parse_spec(spec)[0]
    meta = meta_for(name)
    return task_of_columns(Columns()) if meta is None else meta_task(meta, name)


def declared_score_range(meta: dict, name: str) -> ScoreRange | None:
    """The gold-score range an STS dataset's meta.json declares: ``score_range``, else ``hub.score_range``."""
    declared = meta.get("score_range") or (meta.get("hub") or {}).get("score_range")
    return ScoreRange(float(declared[0]), float(declared[1]), f"{name}'s meta.json") if declared else None


def _hub_rows(name: str, split: str, meta: dict, local: Path, task: DataTask):
    hub = meta.get("hub")
    splits = meta.get("splits") or {}
    if splits and split not in splits:
        raise DataError(f"dataset '{name}' has no split '{split}' (splits: {', '.join(splits)})")
    if not hub:
        raise DataError(f"dataset {name}:{split} not found: looked for {local} (set {DATA_DIR_ENV})")
    try:
        import datasets

        table = datasets.load_dataset(hub["path"], hub.get("name"), split=split)
    except Exception as exc:
        raise DataError(
            f"dataset {name}:{split} not found: no {local} (set {DATA_DIR_ENV}) and the hub copy "
            f"{hub['path']} could not be loaded ({type(exc).__name__})"
        ) from None
    ours = task.columns
    mapping = hub.get("columns", {})
    for number, row in enumerate(table, start=1):
        yield f"{hub['path']}:{split}:{number}", {
            field: row.get(mapping.get(field, field)) for field in (ours.text, ours.text_pair, ours.label) if field
        }
