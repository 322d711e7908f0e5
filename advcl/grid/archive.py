"""``advcl grid archive`` and ``advcl grid restore``: a grid's results without its weights, to finish a grid
over machines or sessions whose run folders do not last (a purged scratch disk, a fresh cloud machine).

What a finished job leaves that ``advcl grid report`` reads and ``advcl grid run`` counts as done (advcl.grid.steps):
its evaluations' result files (``OUTPUT_DIR/_grid/JOB/LABEL.json``), a finished perturb job's result and its
adversarial rows, and of a completed run the run folder's ``config.toml``, ``report.json``, ``metrics.jsonl`` and
``predictions/`` (the per-example predictions of McNemar's test): a few hundred kB a job, where its checkpoints
are hundreds of megabytes. :func:`archive` copies them, in the output folder's layout, with a manifest
(``archive.json``); :func:`restore` copies them back under the grid's output folder, never over a file: one
already there with the same bytes is skipped, one with other bytes is refused before anything is copied. A
restored run has no weights: the grid counts it done and reports it; an evaluation added to the grid later needs
the run trained again.
"""

from __future__ import annotations

import json
from pathlib import Path

from advcl.errors import BadInput
from advcl.grid.spec import Grid, Job
from advcl.grid.steps import job_dir, result_path, train_done
from advcl.runtime.atomic import atomic_path, write_text

MANIFEST = "archive.json"
RUN_FILES = ("config.toml", "report.json", "metrics.jsonl")


def job_files(grid: Grid, job: Job) -> list[Path]:
    """The files of ``job`` worth keeping, as they are now (paths under the grid's output folder)."""
    files = [result_path(grid, job, e) for e in job.evaluations]
    files += sorted(job_dir(grid, job).glob("*.predictions.jsonl"))  # a [[model]] row's (a run keeps its own)
    finished = job_dir(grid, job) / "perturb.json"  # written once advcl perturb has finished
    if job.kind == "perturb" and finished.is_file():
        folder = grid.output_dir / job.perturb.name
        files += [finished, *sorted(p for p in folder.rglob("*") if p.is_file())]
    if job.kind == "run" and train_done(job):
        run = Path(job.model)
        files += [run / name for name in RUN_FILES]
        files += sorted(p for p in (run / "predictions").rglob("*") if p.is_file())
    return [f for f in files if f.is_file()]


def _relative(grid: Grid, path: Path) -> Path:
    try:
        return path.relative_to(grid.output_dir)
    except ValueError:
        raise BadInput(f"{path} lies outside the grid's output_dir {grid.output_dir}: it cannot be archived") from None


def _copy(source: Path, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(target) as tmp:
        tmp.write_bytes(source.read_bytes())


def archive(grid: Grid, jobs: list[Job], output: Path) -> dict:
    """Copy the kept files of ``jobs`` into ``output`` (a new or empty folder, or an earlier archive of this grid,
    whose files are replaced) and write its manifest; returns the manifest."""
    manifest_path = output / MANIFEST
    if output.is_file():
        raise BadInput(f"--output {output} is a file, not a folder")
    if output.is_dir() and any(output.iterdir()) and not manifest_path.is_file():
        raise BadInput(f"--output {output} holds other files and no {MANIFEST}: give an empty or new folder")
    previous = _manifest(output) if manifest_path.is_file() else {"files": []}
    if previous.get("output_dir", str(grid.output_dir)) != str(grid.output_dir):
        raise BadInput(f"--output {output} archives another grid's runs ({previous['output_dir']})")
    kept = {str(p) for p in previous["files"]}
    done = []
    for job in jobs:
        files = job_files(grid, job)
        for path in files:
            relative = _relative(grid, path)
            _copy(path, output / relative)
            kept.add(relative.as_posix())
        if files:
            done.append(job.name)
    manifest = {"grid": str(grid.path), "output_dir": str(grid.output_dir), "jobs": sorted(set(previous.get(
        "jobs", [])) | set(done)), "files": sorted(kept)}
    write_text(manifest_path, json.dumps(manifest, indent=2) + "\n")
    return manifest | {"archived": done}


def _manifest(folder: Path) -> dict:
    try:
        manifest = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
        if isinstance(manifest, dict) and isinstance(manifest.get("files"), list):
            return manifest
    except (OSError, ValueError):
        pass
    raise BadInput(f"{folder} is not an archive of `advcl grid archive` (no readable {MANIFEST})")


def restore(grid: Grid, source: Path) -> dict:
    """Copy the files of the archive ``source`` that the grid's output folder lacks into it; a file there with
    other bytes is refused (nothing copied). Returns what was copied and what was already there."""
    manifest = _manifest(source)
    if manifest.get("output_dir") != str(grid.output_dir):  # the results name their predictions by that path
        raise BadInput(f"{source} archives the runs of output_dir {manifest.get('output_dir')}, not "
                       f"{grid.output_dir} (the grid's)")
    copy, present = [], []
    for name in manifest["files"]:
        relative = Path(name)
        if relative.is_absolute() or ".." in relative.parts:
            raise BadInput(f"{source / MANIFEST} names {name}, outside the archive")
        origin, target = source / relative, grid.output_dir / relative
        if not origin.is_file():
            raise BadInput(f"{origin} is named in {source / MANIFEST} but missing")
        if target.exists():
            if not target.is_file() or target.read_bytes() != origin.read_bytes():
                raise BadInput(f"{target} exists with other contents than {origin}: nothing restored (move it away "
                               "or restore into another output_dir)")
            present.append(name)
        else:
            copy.append(name)
    for name in copy:
        _copy(source / name, grid.output_dir / name)
    return {"restored": copy, "already_there": present, "jobs": manifest.get("jobs", [])}
