"""Running a grid's jobs: the order they may run in (a job waits for the jobs it needs), the progress view,
and the local executor — N worker slots on this machine, each running its job's steps as ``advcl``
processes with their own thread count.

A worker killed from outside (a signal: the OOM killer, ``kill -9``) costs only its own job: the job is started
once more, which resumes its run from the last checkpoint and skips what it finished; if it is killed again it
is recorded as failed and the others go on. Ctrl-C passes one SIGINT to every running step (training saves a
checkpoint), waits for them, and ends with exit 130; running the grid again resumes.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from contextlib import contextmanager
from dataclasses import dataclass, field

from advcl.errors import BadInput, Interrupted
from advcl.grid.spec import Grid, Job
from advcl.grid.steps import Outcome, Step, finish_step, pending_steps, record, stale_settings, start_step

POLL_SECONDS = 0.2
STOP_WAIT_SECONDS = 120  # after Ctrl-C, how long a step may take to save its checkpoint before it is killed
RETRIES_AFTER_KILL = 1


def available_cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def thread_count(workers: int, threads: int, cores: int | None = None) -> int:
    """Threads per worker: ``threads``, or the cores shared out; refused when workers × threads > cores."""
    cores = cores or available_cores()
    if workers < 1:
        raise BadInput(f"--workers must be at least 1, got {workers}")
    threads = threads or max(1, cores // workers)
    if workers * threads > cores:
        raise BadInput(f"--workers {workers} × --threads {threads} is more than the {cores} cores here")
    return threads


@dataclass
class Queue:
    """Which jobs may start: those whose needs finished; a job whose need failed fails without running."""

    waiting: list[Job]
    done: set[str] = field(default_factory=set)
    failed: dict[str, str] = field(default_factory=dict)
    running: set[str] = field(default_factory=set)
    ran: int = 0  # jobs that had something to do

    def next_ready(self) -> Job | None:
        for job in list(self.waiting):
            lost = [n for n in job.needs if n in self.failed]
            if lost:
                self.waiting.remove(job)
                self.failed[job.name] = f"needs {lost[0]}, which failed"
            elif all(n in self.done for n in job.needs):
                self.waiting.remove(job)
                self.running.add(job.name)
                return job
        return None

    def finish(self, outcome: Outcome) -> None:
        self.running.discard(outcome.job)
        if outcome.ok:
            self.done.add(outcome.job)
        else:
            self.failed[outcome.job] = outcome.error
        self.ran += bool(outcome.steps) or not outcome.ok

    def fail_waiting(self, reason: str) -> None:
        for job in self.waiting:
            self.failed[job.name] = reason
        self.waiting.clear()

    @property
    def finished(self) -> bool:
        return not self.waiting and not self.running


class View:
    """One rich progress line on stderr: jobs done / running / failed of all, and the ETA; a line per
    finished or failed job above it."""

    def __init__(self, total: int, enabled: bool = True):
        from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn,
                                   TimeRemainingColumn)

        from advcl.runtime.progress import stderr

        self.progress = Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                                 TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn(), console=stderr,
                                 disable=not enabled)
        self.task = self.progress.add_task("grid", total=total)

    def show(self, queue: Queue) -> None:
        self.progress.update(self.task, completed=len(queue.done) + len(queue.failed),
                             description=f"grid: {len(queue.done)} done · {len(queue.running)} running · "
                                         f"{len(queue.failed)} failed")

    def say(self, text: str) -> None:
        self.progress.console.print(text, highlight=False, soft_wrap=True)

    def outcome(self, outcome: Outcome) -> None:
        from rich.markup import escape

        if not outcome.ok:
            self.say(f"[red]failed[/] {escape(outcome.job)}: {escape(outcome.error)}")
        elif outcome.steps:
            self.say(f"[green]done[/] {escape(outcome.job)} ({escape(', '.join(outcome.steps))})")

    @contextmanager
    def shown(self):
        with self.progress:
            yield self


@dataclass
class Slot:
    job: Job
    steps: list[Step]
    process: subprocess.Popen | None = None
    step: Step | None = None
    ran: list[str] = field(default_factory=list)
    kills: int = 0
    error: str = ""  # a job that cannot start (a run folder made with other settings)


def drive(jobs: list[Job], executor, view: View, capacity: int) -> Queue:
    """Start ready jobs while fewer than ``capacity`` run, look at the running ones until every job is over;
    ``executor`` starts (``start(job)``), looks at (``poll(handle)``: an Outcome once over) and, on Ctrl-C,
    stops (``stop(handles)``) jobs. Returns the queue with what finished and what failed."""
    from advcl.interrupts import raising_keyboard_interrupt

    queue, running = Queue(list(jobs)), {}
    try:
        with raising_keyboard_interrupt():
            while not queue.finished:
                while len(running) < capacity and (job := queue.next_ready()) is not None:
                    running[job.name] = executor.start(job)
                if not running:  # none runs and none could start: the jobs left need each other
                    queue.fail_waiting("its needs wait on each other")
                    break
                for name, handle in list(running.items()):
                    outcome = executor.poll(handle)
                    if outcome is not None:
                        del running[name]
                        queue.finish(outcome)
                        view.outcome(outcome)
                view.show(queue)
                time.sleep(POLL_SECONDS)
    except KeyboardInterrupt:
        executor.stop(list(running.values()))
        raise Interrupted(f"grid interrupted: {len(queue.done)} jobs done, {len(running)} stopped (their runs keep "
                          f"a checkpoint); run it again to resume") from None
    view.show(queue)
    return queue


class LocalExecutor:
    """Each job in a slot of this machine: its steps one after another as ``advcl`` processes."""

    def __init__(self, grid: Grid, threads: int):
        self.grid, self.threads = grid, threads

    def start(self, job: Job) -> Slot:
        stale = stale_settings(job)
        return Slot(job, [] if stale else pending_steps(self.grid, job), error=stale)

    def poll(self, slot: Slot) -> Outcome | None:
        return _advance(self.grid, slot, self.threads)

    def stop(self, slots: list[Slot]) -> None:
        _stop(slots)


def run_local(grid: Grid, jobs: list[Job], workers: int, threads: int, view: View) -> Queue:
    """Run ``jobs`` on ``workers`` slots of this machine."""
    return drive(jobs, LocalExecutor(grid, threads), view, workers)


def _advance(grid: Grid, slot: Slot, threads: int) -> Outcome | None:
    """Start the slot's next step, or look at the running one; an Outcome once the job is over."""
    if slot.error:
        record(grid, slot.job, slot.error)
        return Outcome(slot.job.name, False, slot.error)
    if slot.process is not None:
        code = slot.process.poll()
        if code is None:
            return None
        error = finish_step(grid, slot.job, slot.step, code)
        slot.process = None
        if error and code < 0 and slot.kills < RETRIES_AFTER_KILL:  # killed from outside: once more, resuming
            slot.kills += 1
            slot.steps = pending_steps(grid, slot.job)
        elif error:
            record(grid, slot.job, error)
            return Outcome(slot.job.name, False, error, slot.ran)
        else:
            slot.ran.append(slot.step.label)
    if not slot.steps:
        record(grid, slot.job, "")
        return Outcome(slot.job.name, True, "", slot.ran)
    slot.step = slot.steps.pop(0)
    slot.process = start_step(grid, slot.job, slot.step, threads)
    return None


def _stop(slots: list[Slot]) -> None:
    """One SIGINT to each running step (each saves what it can), then wait; kill what does not stop in time."""
    running = [s.process for s in slots if s.process is not None and s.process.poll() is None]
    for process in running:
        process.send_signal(signal.SIGINT)
    deadline = time.monotonic() + STOP_WAIT_SECONDS
    for process in running:
        try:
            process.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
