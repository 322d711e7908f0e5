"""advcl grid run on tiny random models: 2 workers with one killed mid-run (the grid completes, its run resumes,
finished runs are not trained again), a failing run recorded while the others go on, and the SLURM path through
submitit's local executor."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import write_tiny_recipe

from advcl.grid.spec import load_grid


def write_grid(tmp_path: Path, model_dir: Path, methods: str, examples: int = 96) -> Path:
    recipe = write_tiny_recipe(tmp_path, model_dir, train={"eval_every": 0, "save_every": 3, "log_every": 10},
                               data={"max_train_examples": examples})
    path = tmp_path / "grid.toml"
    path.write_text(f"""output_dir = "{tmp_path}/out"
seeds = [0]
baseline = "a"
[[evaluate]]
data = "sst2:validation"
max_examples = 16
checkpoint = "last"
""" + methods.format(recipe=recipe, tmp=tmp_path))
    return path


def train_process(run_name: str) -> int | None:
    """The pid of the `advcl train` process of ``run_name``, found in /proc."""
    for entry in Path("/proc").iterdir():
        try:
            command = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"train" in command and f'run.name="{run_name}"'.encode() in command:
            return int(entry.name)
    return None


def completed(run: Path) -> bool:
    report = run / "report.json"
    return report.is_file() and json.loads(report.read_text()).get("status") == "completed"


def test_a_killed_worker_costs_only_its_run_and_finished_runs_are_not_retrained(tmp_path, tiny_model_dir):
    grid_path = write_grid(tmp_path, tiny_model_dir, """
[[method]]
name = "a"
recipe = "{recipe}"
[[method]]
name = "b"
recipe = "{recipe}"
[[method]]
name = "broken"
recipe = "{recipe}"
set = {{ "data.train" = "{tmp}/missing.csv" }}
""", examples=800)
    out = tmp_path / "out"
    grid = subprocess.Popen([sys.executable, "-m", "advcl", "grid", "run", str(grid_path), "--workers", "2",
                             "--threads", "1"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    killed = False
    deadline = time.monotonic() + 300
    while not killed and grid.poll() is None and time.monotonic() < deadline:
        pid = train_process("a-s0")
        if pid and list((out / "a-s0" / "checkpoints").glob("step-*")) and not completed(out / "a-s0"):
            os.kill(pid, signal.SIGKILL)
            killed = True
        time.sleep(0.05)
    stdout, stderr = grid.communicate(timeout=600)
    assert killed, "the run ended before it could be killed: make it longer"
    assert grid.returncode == 1, stderr
    assert "error: 1 of 3 jobs failed (broken-s0)" in stderr
    failure = json.loads((out / "_grid" / "broken-s0" / "failed.json").read_text())
    assert failure["error"].startswith("train: exit 2: error:") and "missing.csv" in failure["error"]
    for run in ("a-s0", "b-s0"):
        assert completed(out / run) and (out / "_grid" / run / "sst2_validation_16.json").is_file()
    assert (out / "_grid" / "a-s0" / "resume.log").is_file()  # the killed run went on from its checkpoint
    assert not (out / "_grid" / "b-s0" / "resume.log").exists()
    assert json.loads((out / "a-s0" / "report.json").read_text())["step"] == 200  # 800 / 8 × 2 epochs, whole
    before = {run: (out / run / "report.json").stat().st_mtime_ns for run in ("a-s0", "b-s0")}
    again = subprocess.run([sys.executable, "-m", "advcl", "grid", "run", str(grid_path), "--workers", "2",
                            "--threads", "1"], capture_output=True, text=True, timeout=300)
    assert again.returncode == 1 and "1 of 3 jobs failed (broken-s0)" in again.stderr
    assert "done a-s0" not in again.stderr and "done b-s0" not in again.stderr
    assert {run: (out / run / "report.json").stat().st_mtime_ns for run in before} == before


def test_ctrl_c_stops_the_grid_with_130_and_a_second_run_resumes(tmp_path, tiny_model_dir):
    grid_path = write_grid(tmp_path, tiny_model_dir, '[[method]]\nname = "a"\nrecipe = "{recipe}"\n', examples=800)
    run = tmp_path / "out" / "a-s0"
    command = [sys.executable, "-m", "advcl", "grid", "run", str(grid_path), "--threads", "1"]
    grid = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 300
    while not list((run / "checkpoints").glob("step-*")) and time.monotonic() < deadline:
        time.sleep(0.05)
    grid.send_signal(signal.SIGINT)
    _, stderr = grid.communicate(timeout=300)
    assert grid.returncode == 130, stderr
    assert stderr.strip().splitlines()[-1].startswith("grid interrupted:")  # a clean Ctrl-C is not an error:
    assert not completed(run) and list((run / "checkpoints").glob("step-*"))
    again = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr
    assert "done a-s0 (resume, sst2:validation@16)" in again.stderr and completed(run)


def test_submitit_local_executor_runs_the_grid_end_to_end(tmp_path, tiny_model_dir):
    pytest.importorskip("submitit")
    from advcl.grid.local import View
    from advcl.grid.slurm import run_slurm
    from advcl.grid.spec import Slurm

    grid = load_grid(write_grid(tmp_path, tiny_model_dir, '[[method]]\nname = "a"\nrecipe = "{recipe}"\n'))
    queue = run_slurm(grid, grid.jobs, 1, View(len(grid.jobs), enabled=False), Slurm(time_min=10), cluster="local")
    assert (queue.done, queue.failed) == ({"a-s0"}, {})
    assert completed(tmp_path / "out" / "a-s0")
    result = json.loads((tmp_path / "out" / "_grid" / "a-s0" / "sst2_validation_16.json").read_text())
    assert result["sample"]["examples"] == 16 and 0 <= result["accuracy"] <= 1
    assert list((tmp_path / "out" / "_grid" / "submitit").glob("*_result.pkl"))  # it went through submitit
