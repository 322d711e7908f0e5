"""advcl grid status: each job's state and the training time left, read from made-up run folders, results and
failure records; the command writes nothing."""

from __future__ import annotations

import json
import shutil

import pytest
from conftest import run_cli, write_tiny_recipe, write_two_method_grid

from advcl.grid.spec import load_grid
from advcl.grid.status import grid_status, last_logged_step
from advcl.grid.steps import job_dir, result_path


def run_folder(path, report, metrics=()):
    (path / "model").mkdir(parents=True)
    (path / "config.toml").write_text("")
    (path / "report.json").write_text(json.dumps(report))
    (path / "metrics.jsonl").write_text("".join(json.dumps(row) + "\n" for row in metrics))


@pytest.fixture
def grid(tmp_path, tiny_model_dir):
    recipe = write_tiny_recipe(tmp_path, tiny_model_dir)
    path = write_two_method_grid(tmp_path, recipe, '[[evaluate]]\ndata = "sst2:validation"\n')
    grid = load_grid(path, check_recipes=False)
    out = tmp_path / "out"
    # base-s0: trained in 20 s and evaluated; base-s1: checkpoint at step 4 after 10 s, logged up to step 6
    run_folder(out / "base-s0", {"status": "completed", "step": 10, "total_steps": 10, "train_seconds": 20.0})
    evaluation = grid.spec.evaluate[0]
    result_path(grid, grid.job("base-s0"), evaluation).parent.mkdir(parents=True)
    result_path(grid, grid.job("base-s0"), evaluation).write_text(json.dumps({"accuracy": 0.5}))
    rows = [{"step": s, "split": "train", "loss": 0.5} for s in (2, 4)] + [{"step": 4, "split": "validation"},
                                                                          {"step": 6, "split": "train"}]
    run_folder(out / "base-s1", {"status": "running", "step": 4, "total_steps": 10, "train_seconds": 10.0}, rows)
    with (out / "base-s1" / "metrics.jsonl").open("a") as handle:
        handle.write('{"step": 7, "spl')  # cut by a kill
    # adv-s0 failed before it made a run folder; adv-s1 trained in 30 s, not evaluated; adv-s2 not started
    job_dir(grid, grid.job("adv-s0")).mkdir(parents=True)
    (job_dir(grid, grid.job("adv-s0")) / "failed.json").write_text(json.dumps({"error": "train: exit 2: error: boom"}))
    run_folder(out / "adv-s1", {"status": "completed", "step": 10, "total_steps": 10, "train_seconds": 30.0})
    job_dir(grid, grid.job("adv-s1")).mkdir(parents=True)
    (job_dir(grid, grid.job("adv-s1")) / ".sst2_validation.json.partial").write_text("")  # being evaluated
    return grid


def test_each_jobs_state_and_the_training_time_left(grid):
    status = grid_status(grid)
    jobs = {j["job"]: j for j in status["jobs"]}
    assert {name: (j["state"], j["training"]) for name, j in jobs.items()} == {
        "base-s0": ("done", "done"),
        "base-s1": ("training", "step 6 of 10 (running)"),
        "base-s2": ("waiting", "not started"),
        "adv-s0": ("failed", "not started"),
        "adv-s1": ("evaluating", "done"),
        "adv-s2": ("waiting", "not started"),
    }
    assert jobs["adv-s0"]["error"] == "train: exit 2: error: boom"
    assert jobs["adv-s1"]["left"] == ["sst2:validation"] and jobs["base-s0"]["evaluations_done"] == 1
    # base-s1: 4 steps left at 10 s / 4 steps; base-s2: base-s0's 20 s; adv-s2: adv-s1's 30 s; adv-s0: adv-s1's too
    assert {name: j["training_seconds_left"] for name, j in jobs.items()} == {
        "base-s0": 0.0, "base-s1": 10.0, "base-s2": 20.0, "adv-s0": 30.0, "adv-s1": 0.0, "adv-s2": 30.0}
    assert status["training_seconds_left"] == 90.0 and status["runs_without_estimate"] == 0
    assert status["counts"] == {"done": 1, "training": 1, "perturbing": 0, "evaluating": 1, "waiting": 2, "failed": 1}
    assert (status["evaluations_done"], status["evaluations"]) == (1, 6)


def test_without_a_finished_run_a_started_runs_projection_estimates_its_method(grid):
    shutil.rmtree(grid.output_dir / "base-s0")
    shutil.rmtree(grid.output_dir / "adv-s1")
    jobs = {j["job"]: j for j in grid_status(grid)["jobs"]}
    # base-s1 projects 10 s / 4 steps × 10 steps = 25 s a run; adv has no run started: no estimate; an evaluated
    # run whose evaluation is not being written is waiting, not evaluating
    assert (jobs["base-s0"]["training_seconds_left"], jobs["base-s2"]["training_seconds_left"]) == (25.0, 25.0)
    assert jobs["adv-s2"]["training_seconds_left"] is None
    assert grid_status(grid)["runs_without_estimate"] == 3
    assert jobs["adv-s1"]["state"] == "waiting" and jobs["adv-s1"]["training"] == "not started"


def test_a_trained_run_not_being_evaluated_waits_and_a_retried_job_is_no_longer_failed(grid):
    from advcl.grid.steps import Step, start_step

    (job_dir(grid, grid.job("adv-s1")) / ".sst2_validation.json.partial").unlink()
    assert {j["job"]: j["state"] for j in grid_status(grid)["jobs"]}["adv-s1"] == "waiting"
    job = grid.job("adv-s0")
    start_step(grid, job, Step("train", ["--help"]), threads=1).wait()  # a step of it starts again
    assert {j["job"]: j["state"] for j in grid_status(grid)["jobs"]}["adv-s0"] == "waiting"


def test_the_summary_says_unknown_or_none_rather_than_zero():
    from advcl.cli.grid import _training_left

    assert _training_left({"training_seconds_left": 0.0, "runs_without_estimate": 2}) == \
        "unknown (2 runs with no estimate yet)"
    assert _training_left({"training_seconds_left": 0.0, "runs_without_estimate": 0}) == "none"
    assert _training_left({"training_seconds_left": 5400.0, "runs_without_estimate": 1}) == \
        "≈ 1.5 h of one worker's time, and 1 run with no estimate yet"


def test_the_last_logged_training_step_skips_validation_rows_and_a_cut_line(grid):
    assert last_logged_step(grid.output_dir / "base-s1") == 6
    assert last_logged_step(grid.output_dir / "base-s2") is None


def test_the_command_prints_the_table_and_json_and_writes_nothing(grid):
    before = sorted(p for p in grid.output_dir.rglob("*"))
    done = run_cli("grid", "status", str(grid.path))
    assert done.returncode == 0, done.stderr
    [line] = [ln for ln in done.stdout.splitlines() if "base-s1" in ln]
    cells = [cell.strip() for cell in line.strip("│ ").split("│")]
    assert cells == ["base-s1", "training", "step 6 of 10 (running)", "0 of 1", "sst2:validation"]
    assert done.stdout.strip().splitlines()[-1] == ("6 jobs: 1 done, 1 training, 1 evaluating, 2 waiting, 1 failed; "
                                                   "evaluations 1 of 6; training left: ≈ 2 min of one worker's time")
    as_json = json.loads(run_cli("grid", "status", str(grid.path), "--json").stdout)
    assert as_json == json.loads(json.dumps(grid_status(grid)))
    assert sorted(p for p in grid.output_dir.rglob("*")) == before
