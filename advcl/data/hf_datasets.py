"""Data the catalogue does not hold, read through Hugging Face ``datasets`` (and a JSON-array file).

Three more forms of ``--data`` / ``data.train`` / ``data.validation``, tried only after the offline catalogue
(:func:`advcl.data.catalogue.load_data`: a catalogue name or a dataset folder with a meta.json always wins):

    hf:PATH:SPLIT  hf:PATH:CONFIG:SPLIT    a Hugging Face hub dataset (``hf:nyu-mll/glue:sst2:validation``),
                                           through ``datasets.load_dataset``: its cache, or the hub when online
    FOLDER  FOLDER:SPLIT                   a ``datasets.save_to_disk`` folder: a Dataset, or a DatasetDict and
                                           one of its splits
    FILE.json                              a JSON array of row objects (a .json file of one object per line is
                                           read as JSON lines, as before)

Rows are mapped with the same columns as a user file (``--text-column`` / ``data.text_column``, ...) and checked
by the same :func:`~advcl.data.dataset.build_dataset`, so a bad row is named: ``FOLDER[train] row 12``,
``nyu-mll/glue (sst2) validation row 12``, ``FILE.json item 12`` (1-based). A ``ClassLabel`` label column gives
the label names, in its order.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from advcl.data.dataset import Columns, TextDataset, build_dataset, same_classes
from advcl.data.readers import DataError
from advcl.data.tasks import task_of_columns

HUB_PREFIX = "hf:"
SAVED_DATASET = "state.json"  # what save_to_disk writes into a Dataset's folder
SAVED_DATASET_DICT = "dataset_dict.json"  # ... and into a DatasetDict's


@dataclass(frozen=True)
class HfSource:
    """Where rows come from: ``kind`` is "hub", "disk" or "json-array"."""

    kind: str
    where: str  # hub path, folder or file
    config: str | None = None
    split: str | None = None

    @property
    def label(self) -> str:
        """How errors name the source: the part before `` row N``."""
        if self.kind == "hub":
            return f"{self.where}{f' ({self.config})' if self.config else ''} {self.split}"
        return f"{self.where}[{self.split}]" if self.split else self.where


def resolve_spec(spec: str) -> HfSource | None:
    """The datasets source ``spec`` names, or None when it is none of the forms above (the catalogue's to read).
    A malformed ``hf:`` spec is a :class:`DataError`."""
    if spec.startswith(HUB_PREFIX):
        parts = spec[len(HUB_PREFIX):].split(":")
        if len(parts) not in (2, 3) or not all(parts):
            raise DataError(f"data '{spec}' must be hf:PATH:SPLIT or hf:PATH:CONFIG:SPLIT "
                            "(like hf:nyu-mll/glue:sst2:validation)")
        return HfSource("hub", parts[0], parts[1] if len(parts) == 3 else None, parts[-1])
    path = Path(spec)
    if path.suffix.lower() == ".json" and path.is_file() and _starts_with_array(path):
        return HfSource("json-array", spec)
    folder, _, split = spec.rpartition(":") if not path.is_dir() else (spec, "", "")
    folder = Path(folder) if folder else path
    if folder.is_dir() and not (folder / "meta.json").is_file():
        if (folder / SAVED_DATASET_DICT).is_file() or (folder / SAVED_DATASET).is_file():
            return HfSource("disk", str(folder), None, split or None)
    return None


def _starts_with_array(path: Path) -> bool:
    with path.open("rb") as handle:
        head = handle.read(4096).lstrip()
    return head.startswith((b"[", b"\xef\xbb\xbf["))


def load_hf_data(source: HfSource, columns: Columns | None = None,
                 label_names: list[str] | None = None, holder: str = "the model") -> TextDataset:
    """Read ``source`` with ``columns`` (default: text / label) into a checked :class:`TextDataset`."""
    columns = columns or Columns()
    task = task_of_columns(columns)
    if source.kind == "json-array":
        return build_dataset(source.where, task, _array_items(Path(source.where)), columns, label_names)
    table = _hub_table(source) if source.kind == "hub" else _disk_table(source)
    feature = table.features.get(columns.label) if columns.label else None
    name = f"{HUB_PREFIX}{source.where}" if source.kind == "hub" else source.label
    if hasattr(feature, "names"):  # a ClassLabel: integers with names
        declared = list(feature.names)
        label_names = same_classes(label_names, declared, name, holder) if label_names else declared
    rows = ((f"{source.label} row {n}", row) for n, row in enumerate(table, start=1))
    return build_dataset(name, task, rows, columns, label_names)


def _array_items(path: Path) -> Iterator[tuple[str, dict]]:
    try:
        items = json.loads(path.read_text(encoding="utf-8-sig"))
    except UnicodeDecodeError as exc:
        raise DataError(f"{path}: not valid UTF-8 ({exc.reason} at byte {exc.start})") from None
    except json.JSONDecodeError as exc:
        raise DataError(f"{path}:{exc.lineno}: not valid JSON ({exc.msg})") from None
    if not isinstance(items, list):
        raise DataError(f"{path}: expected a JSON array of row objects, got {type(items).__name__}")
    for number, item in enumerate(items, start=1):
        if not isinstance(item, dict):
            raise DataError(f"{path} item {number}: expected a JSON object, got {type(item).__name__}")
        yield f"{path} item {number}", item


def _disk_table(source: HfSource):
    import datasets

    try:
        loaded = datasets.load_from_disk(source.where)
    except Exception as exc:  # noqa: BLE001 - any unreadable folder is one line
        raise DataError(f"{source.where}: not a readable datasets.save_to_disk folder ({_reason(exc)})") from None
    if isinstance(loaded, datasets.DatasetDict):
        if source.split is None or source.split not in loaded:
            wanted = f"has no split '{source.split}'" if source.split else "holds several splits: name one"
            raise DataError(f"{source.where} {wanted} (splits: {', '.join(loaded)}; like {source.where}:"
                            f"{next(iter(loaded), 'train')})")
        return loaded[source.split]
    if source.split is not None:
        raise DataError(f"{source.where} is one dataset without splits: drop ':{source.split}'")
    return loaded


def _hub_table(source: HfSource):
    import datasets

    try:
        return datasets.load_dataset(source.where, source.config, split=source.split)
    except Exception as exc:  # noqa: BLE001 - offline, unknown name, bad config or split: one line
        raise DataError(f"hub dataset {source.label.rstrip()} could not be loaded: {_reason(exc)}") from None


def _reason(exc: Exception) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text[:300]
