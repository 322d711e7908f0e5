"""``advcl grid status``: where a grid stands, read from what is on disk (nothing is started, changed or locked),
so it can be asked while ``advcl grid run`` works in the background.

Per job: done; failed (its failed.json, until a step of it starts again); training (the run's last logged step of
its total, and report.json's status: a run killed with its grid still says "running"); perturbing; evaluating (an
evaluation's output is being written); or waiting for a worker. The training time left is an estimate of one
worker's time: a started run's remaining steps at its own seconds per step so far; a run not
started yet at the mean training time of its setting's finished runs, its other seeds (none finished: of their
projections so far; none started: no estimate).
Evaluations are not estimated.
"""

from __future__ import annotations

import json
import statistics
from pathlib import Path

from advcl.grid.spec import Grid, Job
from advcl.grid.steps import job_dir, pending_steps


STATES = ("done", "training", "perturbing", "evaluating", "waiting", "failed")


def _read_json(path: Path) -> dict:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def last_logged_step(run: Path) -> int | None:
    """The step of the last training row of ``run``'s metrics.jsonl (its report.json's moves at checkpoints only)."""
    try:
        lines = (run / "metrics.jsonl").read_text(encoding="utf-8").splitlines()
    except OSError:
        return None
    for line in reversed(lines):
        try:
            row = json.loads(line)
        except ValueError:
            continue  # a line cut by a kill
        if isinstance(row, dict) and row.get("split") == "train" and isinstance(row.get("step"), int):
            return row["step"]
    return None


def _seconds_per_run(grid: Grid, reports: dict[str, dict]) -> dict[str, float]:
    """Each setting's training seconds per run: the mean over its completed runs (its seeds), else over its started
    runs' projections (seconds per step so far × total steps)."""
    finished: dict[str, list[float]] = {}
    projected: dict[str, list[float]] = {}
    for job in grid.jobs:
        report = reports.get(job.name, {})
        seconds, step, total = report.get("train_seconds"), report.get("step"), report.get("total_steps")
        if not isinstance(seconds, (int, float)):
            continue
        if report.get("status") == "completed":
            finished.setdefault(job.setting, []).append(float(seconds))
        elif isinstance(step, int) and step > 0 and isinstance(total, int):
            projected.setdefault(job.setting, []).append(seconds / step * total)
    return {setting: statistics.mean(finished.get(setting) or projected[setting]) for setting in finished | projected}


def job_status(grid: Grid, job: Job, per_run: dict[str, float], report: dict) -> dict:
    """One job's state, what is left of it, and its training seconds still to go (None: no estimate); ``report``:
    its run's report.json ({} for none)."""
    left = [step.label for step in pending_steps(grid, job)]
    row = {"job": job.name, "kind": job.kind, "setting": job.setting, "seed": job.seed, "training": "–",
           "evaluations_done": sum(e.label not in left for e in job.evaluations),
           "evaluations": len(job.evaluations), "left": left, "error": "", "training_seconds_left": 0.0}
    if job.kind == "run":
        row |= _training(job, report, per_run, trained=not {"train", "resume"} & set(left))
    error = _read_json(job_dir(grid, job) / "failed.json").get("error")
    if error:
        row |= {"state": "failed", "error": str(error)}
    elif not left:
        row["state"] = "done"
    elif "resume" in left:  # a run folder, not finished
        row["state"] = "training"
    elif "perturb" in left:  # advcl perturb makes its output folder as it starts
        row["state"] = "perturbing" if (grid.output_dir / job.perturb.name).exists() else "waiting"
    elif "train" not in left and any(job_dir(grid, job).glob(".*.json.partial")):  # an evaluation's output so far
        row["state"] = "evaluating"
    else:
        row["state"] = "waiting"
    return row


def _training(job: Job, report: dict, per_run: dict[str, float], trained: bool) -> dict:
    if trained:
        return {"training": "done", "training_seconds_left": 0.0}
    total, step, seconds = report.get("total_steps"), report.get("step"), report.get("train_seconds")
    if not report or not isinstance(total, int):
        return {"training": "not started", "training_seconds_left": per_run.get(job.setting)}
    logged = last_logged_step(Path(job.model))
    now = max(x for x in (logged, step, 0) if isinstance(x, int))
    rate = seconds / step if isinstance(seconds, (int, float)) and isinstance(step, int) and step > 0 else None
    if rate is None:  # started, no checkpoint yet: its setting's other runs, scaled to what is left
        whole = per_run.get(job.setting)
        rate = whole / total if whole is not None and total else None
    left = None if rate is None else max(total - now, 0) * rate
    return {"training": f"step {now} of {total} ({report.get('status', 'unknown')})", "training_seconds_left": left}


def grid_status(grid: Grid) -> dict:
    """Every job's :func:`job_status` and the totals."""
    reports = {job.name: _read_json(Path(job.model, "report.json")) for job in grid.jobs if job.kind == "run"}
    per_run = _seconds_per_run(grid, reports)
    jobs = [job_status(grid, job, per_run, reports.get(job.name, {})) for job in grid.jobs]
    estimates = [j["training_seconds_left"] for j in jobs]  # 0.0 for what is trained or trains nothing
    counts = {state: sum(j["state"] == state for j in jobs) for state in STATES}
    return {"grid": str(grid.path), "jobs": jobs, "counts": counts,
            "evaluations_done": sum(j["evaluations_done"] for j in jobs),
            "evaluations": sum(j["evaluations"] for j in jobs),
            "training_seconds_left": sum(e for e in estimates if e is not None),
            "runs_without_estimate": sum(e is None for e in estimates)}
