"""The in-memory dataset every command works on, and the checks each row must pass."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace

import torch

from advcl.data.readers import DataError
from advcl.data.tasks import Columns, DataTask


@dataclass
class TextDataset:
    """Texts (and optional second texts) with integer labels, float scores, or nothing."""

    name: str
    task: DataTask
    texts: list[str]
    pairs: list[str] | None = None
    labels: list | None = None  # int class indices (classification) or float scores (sts)
    label_names: list[str] | None = None
    adv_texts: list[str] | None = None  # row i's adversarial text, paired with texts[i]
    adv_pairs: list[str] | None = None
    adv_statuses: list[str] | None = None  # row i's attack status (successful, failed, skipped)

    def __len__(self) -> int:
        return len(self.texts)

    @property
    def has_class_labels(self) -> bool:
        """Whether every row has a class index (a labelled classification or pair-classification split; an STS
        split's labels are similarity scores)."""
        return self.labels is not None and self.task.has_classes

    def select(self, indices: Iterable[int]) -> TextDataset:
        indices = list(indices)
        pick = lambda xs: None if xs is None else [xs[i] for i in indices]  # noqa: E731
        return replace(self, texts=pick(self.texts), pairs=pick(self.pairs), labels=pick(self.labels),
                       adv_texts=pick(self.adv_texts), adv_pairs=pick(self.adv_pairs),
                       adv_statuses=pick(self.adv_statuses))

    def sample(self, n: int, seed: int) -> TextDataset:
        """A seeded random subset of ``n`` rows (all rows when n is 0 or too large), in source order."""
        if n <= 0 or n >= len(self):
            return self
        generator = torch.Generator().manual_seed(seed)
        chosen = torch.randperm(len(self), generator=generator)[:n].sort().values
        return self.select(chosen.tolist())


def _text(row: dict, column: str, where: str) -> str:
    if column not in row:
        raise DataError(f"{where}: missing column '{column}' (columns: {', '.join(map(str, row))})")
    value = row[column]
    if not isinstance(value, str):
        raise DataError(f"{where}: column '{column}' must be text, got {value!r}")
    if not value.strip():
        raise DataError(f"{where}: empty text in column '{column}'")
    return value


def _adversarial_text(row: dict, column: str, where: str) -> str:
    if column not in row:
        raise DataError(f"{where}: missing column '{column}' of adversarial text: this objective trains on real "
                        "adversarial examples; make them with `advcl perturb` (see `advcl perturb --help`)")
    return _text(row, column, where)


def _status(row: dict, column: str, where: str) -> str:
    if column not in row:
        raise DataError(f"{where}: missing column '{column}' of attack statuses (`advcl perturb` writes it); "
                        "set data.adv_status_column = \"\" to train on every row of a file without one")
    value = row[column]
    if not isinstance(value, str) or not value.strip():
        raise DataError(f"{where}: column '{column}' must hold an attack status such as successful, got {value!r}")
    return value.strip()


def _class_index(value, label_names: list[str] | None, where: str, column: str) -> int:
    if isinstance(value, str) and label_names is not None and value in label_names:
        return label_names.index(value)
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        value = int(value)
    if isinstance(value, int) and not isinstance(value, bool):
        if label_names is None or 0 <= value < len(label_names):
            if value < 0:
                raise DataError(f"{where}: label {value} in column '{column}' is negative")
            return value
    known = f"0..{len(label_names) - 1} or {', '.join(label_names)}" if label_names else "integers"
    raise DataError(f"{where}: label {value!r} in column '{column}' is outside the label set ({known})")


@dataclass(frozen=True)
class ScoreRange:
    """The gold scores an STS dataset declares, and who declares them (named in the error)."""

    low: float
    high: float
    declared_by: str


def same_classes(names: list[str], declared: list[str] | None, name: str, holder: str = "the model") -> list[str]:
    """``names`` (the classes a model predicts, a recipe's ``data.labels``, a training split's classes), refused
    where the dataset ``name`` declares another number of classes: a model trained on banking77 (77 intents) must
    not be scored on hwu64 (64) by class index. The same number under other names (sst2's negative/positive,
    imdb's neg/pos) is read by index."""
    if declared is None or len(names) == len(declared):
        return names

    def listed(classes: list[str]) -> str:
        return ", ".join(classes[:4]) + (", ..." if len(classes) > 4 else "")

    raise DataError(f"{holder} has {len(names)} classes ({listed(names)}) but {name} has {len(declared)} "
                    f"({listed(declared)})")


def build_dataset(
    name: str,
    task: DataTask,
    rows: Iterable[tuple[str, dict]],
    columns: Columns,
    label_names: list[str] | None = None,
    score_range: ScoreRange | None = None,
) -> TextDataset:
    """Check and collect rows (``where`` strings like ``file:line`` name them in errors).

    Classification labels are class indices or label names; without ``label_names`` integer labels
    define ``0..max`` and string labels their sorted set. STS scores must lie in ``score_range`` when given.
    """
    texts, pairs, labels, adv_texts, adv_pairs, statuses = [], [], [], [], [], []
    raw_labels: list[tuple[str, object]] = []
    for where, row in rows:
        texts.append(_text(row, columns.text, where))
        if columns.text_pair:
            pairs.append(_text(row, columns.text_pair, where))
        if columns.adv_text:
            adv_texts.append(_adversarial_text(row, columns.adv_text, where))
            if columns.text_pair:
                adv_pairs.append(_adversarial_text(row, columns.adv_text_pair, where))
            if columns.adv_status:
                statuses.append(_status(row, columns.adv_status, where))
        if not task.labels or not columns.label:
            continue
        if columns.label not in row:
            raise DataError(f"{where}: missing column '{columns.label}' (columns: {', '.join(map(str, row))})")
        value = row[columns.label]
        if task.scored:
            try:
                labels.append(float(value))
            except (TypeError, ValueError):
                raise DataError(f"{where}: score {value!r} in column '{columns.label}' is not a number") from None
            if score_range and not score_range.low <= labels[-1] <= score_range.high:
                raise DataError(f"{where}: score {labels[-1]:g} is outside the range [{score_range.low:g}, "
                                f"{score_range.high:g}] that {score_range.declared_by} declares")
        else:
            raw_labels.append((where, value))
    if not texts:
        raise DataError(f"{name}: no rows")
    if raw_labels:
        if label_names is None:
            _check_label_values(raw_labels, columns.label)
            label_names = _infer_label_names([v for _, v in raw_labels])
        labels = [_class_index(v, label_names, where, columns.label) for where, v in raw_labels]
    return TextDataset(
        name=name,
        task=task,
        texts=texts,
        pairs=pairs if columns.text_pair else None,
        labels=labels if (raw_labels or task.scored) else None,
        label_names=label_names,
        adv_texts=adv_texts if columns.adv_text else None,
        adv_pairs=adv_pairs if columns.adv_text and columns.text_pair else None,
        adv_statuses=statuses if columns.adv_text and columns.adv_status else None,
    )


# More classes than any classification dataset has: a larger integer label is a mistake (a score, an id), and
# inferring 0..label from it would build a label list of that length.
MAX_CLASSES = 100_000


def _check_label_values(raw_labels: list[tuple[str, object]], column: str) -> None:
    """Labels inferred from the data: all integers or all strings, and integer labels below ``MAX_CLASSES``."""
    first_where, first = raw_labels[0]
    for where, value in raw_labels:
        if isinstance(value, bool) or not isinstance(value, (int, str)):
            raise DataError(f"{where}: label {value!r} in column '{column}' is neither a class index nor a name")
        if isinstance(value, int) != isinstance(first, int):
            raise DataError(f"{where}: label {value!r} in column '{column}' is a {type(value).__name__} but "
                            f"{first_where} has the {type(first).__name__} {first!r}: use one kind for every row")
        number = value if isinstance(value, int) else (int(value) if value.strip().isdigit() else None)
        if number is not None and number >= MAX_CLASSES:
            raise DataError(f"{where}: label {value!r} in column '{column}' is beyond {MAX_CLASSES:,} classes "
                            "(a score or an id in the label column?)")


def _infer_label_names(values: list) -> list[str] | None:
    if all(isinstance(v, int) and not isinstance(v, bool) for v in values):
        return [str(i) for i in range(max(values) + 1)] if min(values) >= 0 else None
    if all(isinstance(v, str) for v in values):
        if all(v.strip().isdigit() for v in values):
            return [str(i) for i in range(max(int(v) for v in values) + 1)]
        return sorted(set(values))
    return None
