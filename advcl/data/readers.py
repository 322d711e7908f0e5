"""Read rows from jsonl / csv / tsv / parquet files, with errors that name the file and line."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from pathlib import Path

from advcl.errors import BadInput

FILE_SUFFIXES = (".jsonl", ".json", ".csv", ".tsv", ".parquet")


class DataError(BadInput):
    """A data file, or one of its rows, that cannot be used."""


def _decoded_lines(path: Path) -> Iterator[tuple[int, str]]:
    with path.open("rb") as handle:
        for number, raw in enumerate(handle, start=1):
            try:
                yield number, raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise DataError(f"{path}:{number}: not valid UTF-8 ({exc.reason} at byte {exc.start})") from None


def _jsonl_rows(path: Path) -> Iterator[tuple[int, dict]]:
    for number, line in _decoded_lines(path):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise DataError(f"{path}:{number}: not valid JSON ({exc.msg})") from None
        if not isinstance(row, dict):
            raise DataError(f"{path}:{number}: expected a JSON object, got {type(row).__name__}")
        yield number, row


def _delimited_rows(path: Path, delimiter: str) -> Iterator[tuple[int, dict]]:
    text = "".join(line for _, line in _decoded_lines(path))
    reader = csv.DictReader(io.StringIO(text, newline=""), delimiter=delimiter)
    rows = iter(reader)
    while True:
        try:
            row = next(rows)
        except StopIteration:
            return
        except csv.Error as exc:  # a field over csv.field_size_limit() (131,072 characters), a stray NUL...
            raise DataError(f"{path}:{reader.line_num + 1}: not readable as {'CSV' if delimiter == ',' else 'TSV'} "
                            f"({exc})") from None
        if None in row:
            raise DataError(f"{path}:{reader.line_num}: more fields than the header has")
        yield reader.line_num, row


def _parquet_rows(path: Path) -> Iterator[tuple[int, dict]]:
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(path)
    except Exception as exc:
        raise DataError(f"{path}: not a readable parquet file ({exc})") from None
    for number, row in enumerate(table.to_pylist(), start=1):
        yield number, row


def iter_rows(path: Path) -> Iterator[tuple[int, dict]]:
    """Yield (line number, row) pairs; for parquet the number is the row's 1-based index."""
    if not path.is_file():
        raise DataError(f"data file not found: {path}")
    suffix = path.suffix.lower()
    if suffix in (".jsonl", ".json"):
        return _jsonl_rows(path)
    if suffix in (".csv", ".tsv"):
        return _delimited_rows(path, "," if suffix == ".csv" else "\t")
    if suffix == ".parquet":
        return _parquet_rows(path)
    raise DataError(f"{path}: unsupported file type '{suffix}' (use {', '.join(FILE_SUFFIXES)})")
