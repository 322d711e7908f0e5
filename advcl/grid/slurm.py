"""The SLURM executor: each job of the grid is one SLURM job, submitted through submitit
(``pip install advcl[slurm]``), whose body runs the job's steps as ``advcl`` processes on the node
(:func:`advcl.grid.steps.run_job`) — the same commands, skips and resumes as the local executor.

A job is submitted once the jobs it needs have finished. Partition, time limit, GPUs, CPUs and memory come from
the grid file's ``[slurm]`` table or the command's flags. A run that itself spans several GPUs is still started
with ``torchrun`` inside its job, as without the grid. Ctrl-C cancels the submitted jobs (their runs keep their
checkpoints; submitting the grid again resumes them). ``cluster="local"`` runs the same path on this machine
(submitit's LocalExecutor), which is how the tests check it.
"""

from __future__ import annotations

from pathlib import Path

from advcl.errors import BadInput
from advcl.grid.local import Queue, View, drive
from advcl.grid.spec import Grid, Job, Slurm
from advcl.grid.steps import Outcome, run_job


def executor(folder: Path, settings: Slurm, threads: int, cluster: str = "slurm"):
    """A submitit executor for ``cluster`` ("slurm", or "local" to run the jobs here) with the job resources."""
    try:
        import submitit
    except ImportError:
        raise BadInput("--executor slurm needs submitit: pip install 'advcl[slurm]'") from None
    made = submitit.AutoExecutor(folder=folder, cluster=cluster)
    options = {"timeout_min": settings.time_min, "cpus_per_task": settings.cpus or threads, "nodes": 1,
               "tasks_per_node": 1, "name": "advcl-grid"}
    if settings.gpus:
        options["gpus_per_node"] = settings.gpus
    if settings.mem_gb:
        options["mem_gb"] = settings.mem_gb
    if settings.partition:
        options["slurm_partition"] = settings.partition
    made.update_parameters(**options)
    return made


class SubmititExecutor:
    """Each job as a submitit job running :func:`advcl.grid.steps.run_job`."""

    def __init__(self, grid: Grid, threads: int, view: View, settings: Slurm, cluster: str):
        self.submitter = executor(grid.state_dir / "submitit", settings, threads, cluster)
        self.grid, self.threads, self.view = grid, threads, view

    def start(self, job: Job):
        handle = self.submitter.submit(run_job, self.grid, job, self.threads, str(Path.cwd()))
        self.view.say(f"submitted {job.name} (job {handle.job_id})")
        return job.name, handle

    def poll(self, submitted) -> Outcome | None:
        name, handle = submitted
        return _outcome(name, handle) if handle.done() else None

    def stop(self, submitted: list) -> None:
        """Cancel the submitted jobs (their runs keep their checkpoints)."""
        for _, handle in submitted:
            handle.cancel(check=False)


def run_slurm(grid: Grid, jobs: list[Job], threads: int, view: View, settings: Slurm, cluster: str = "slurm") -> Queue:
    """Submit each job once its needs are done (no limit on how many wait in SLURM's queue); wait for all."""
    return drive(jobs, SubmititExecutor(grid, threads, view, settings, cluster), view, capacity=len(jobs))


def _outcome(name: str, handle) -> Outcome:
    """The job's own Outcome, or a failed one saying why the job itself did not finish (time limit, node)."""
    try:
        return handle.result()
    except Exception as exc:  # noqa: BLE001 - submitit re-raises whatever ended the job
        reason = str(exc).strip().splitlines()
        return Outcome(name, False, f"job {handle.job_id}: {reason[-1] if reason else type(exc).__name__} "
                                    f"(logs: {Path(handle.paths.stderr)})")
