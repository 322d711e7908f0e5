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

import time
from pathlib import Path

from advcl.errors import BadInput, Interrupted
from advcl.grid.local import POLL_SECONDS, Queue, View
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


def run_slurm(grid: Grid, jobs: list[Job], threads: int, view: View, settings: Slurm, cluster: str = "slurm") -> Queue:
    """Submit each job once its needs are done; wait for all; returns the queue."""
    submitter = executor(grid.state_dir / "submitit", settings, threads, cluster)
    queue, submitted = Queue(list(jobs)), {}
    try:
        while not queue.finished:
            while (job := queue.next_ready()) is not None:
                submitted[job.name] = submitter.submit(run_job, grid, job, threads)
                view.say(f"submitted {job.name} (job {submitted[job.name].job_id})")
            for name, handle in list(submitted.items()):
                if handle.done():
                    del submitted[name]
                    outcome = _outcome(name, handle)
                    queue.finish(outcome)
                    view.outcome(outcome)
            if not submitted and queue.blocked():
                break
            view.show(queue)
            time.sleep(POLL_SECONDS)
    except KeyboardInterrupt:
        for handle in submitted.values():
            handle.cancel(check=False)
        raise Interrupted(f"grid interrupted: cancelled {len(submitted)} submitted jobs (their runs keep a "
                          "checkpoint); submit it again to resume") from None
    view.show(queue)
    return queue


def _outcome(name: str, handle) -> Outcome:
    """The job's own Outcome, or a failed one saying why the job itself did not finish (time limit, node)."""
    try:
        return handle.result()
    except Exception as exc:  # noqa: BLE001 - submitit re-raises whatever ended the job
        reason = str(exc).strip().splitlines()
        return Outcome(name, False, f"job {handle.job_id}: {reason[-1] if reason else type(exc).__name__} "
                                    f"(logs: {Path(handle.paths.stderr)})")
