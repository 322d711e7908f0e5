"""Atomic file writes: every file advcl writes whole (report.json, summaries, predictions, embeddings, plots) is
written to a temporary file beside it and renamed over it, so a reader or a kill never sees half a file."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path`` to write; rename it onto ``path`` when the block ends, or delete it
    when the block raises. The temporary name is hidden (a leading dot) and keeps the suffix, for writers that pick
    the format from it (``np.save``, ``savefig``)."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp{path.suffix}")
    try:
        yield tmp
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_text(path: Path, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
