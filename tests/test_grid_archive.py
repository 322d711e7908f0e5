"""advcl grid archive / restore: a grid whose run folders are deleted (weights and all) and restored from its
archive is done for `advcl grid run` and reports the same numbers (McNemar's per-example test included); what is
unfinished or is weights stays out; restore never writes over a file; foreign folders are refused in one line."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from conftest import assert_one_line_error, run_cli, write_tiny_recipe, write_two_method_grid

from advcl.config.recipe import load_recipe, recipe_to_toml
from advcl.grid.aggregate import aggregate
from advcl.grid.spec import load_grid
from advcl.grid.steps import result_path

ACCURACY = {"base": [0.70, 0.72, 0.68], "adv": [0.75, 0.80, 0.71]}


def finish(grid, job, accuracy: float, right: list[bool]) -> None:
    """What a finished run leaves: its run folder (settings, report, metrics, predictions, a checkpoint) and its
    evaluation's result, which names the predictions by the run folder's path as `advcl eval` does."""
    run = job_path(job)
    (run / "checkpoints" / "step-12").mkdir(parents=True)
    (run / "checkpoints" / "step-12" / "model.safetensors").write_bytes(b"\0" * 4096)
    (run / "config.toml").write_text(recipe_to_toml(load_recipe(job.recipe, job.overrides)))
    (run / "report.json").write_text(json.dumps({"status": "completed", "train_seconds": 10.5 + job.seed}))
    (run / "metrics.jsonl").write_text(json.dumps({"step": 12, "split": "train", "loss": 0.3}) + "\n")
    predictions = run / "predictions" / "sst2_validation.jsonl"
    predictions.parent.mkdir()
    rows = ({"text": f"t{i}", "label": "pos", "prediction": "pos" if ok else "neg"} for i, ok in enumerate(right))
    predictions.write_text("".join(json.dumps(row) + "\n" for row in rows))
    result = result_path(grid, job, grid.spec.evaluate[0])
    result.parent.mkdir(parents=True, exist_ok=True)
    result.write_text(json.dumps({"accuracy": accuracy, "macro_f1": accuracy / 2, "mcc": 0.1,
                                  "sample": {"examples": 30}, "predictions": str(predictions)}))


def job_path(job) -> Path:
    return Path(job.model)


@pytest.fixture
def grid(tmp_path, tiny_model_dir):
    """base and adv, seeds 0-2, every run finished except adv-s2 (trained half-way, not evaluated)."""
    recipe = write_tiny_recipe(tmp_path, tiny_model_dir)
    grid = load_grid(write_two_method_grid(tmp_path, recipe, '[[evaluate]]\ndata = "sst2:validation"\n'))
    for method, accuracies in ACCURACY.items():
        for seed, accuracy in enumerate(accuracies[:2] if method == "adv" else accuracies):
            finish(grid, grid.job(f"{method}-s{seed}"), accuracy, [i < 20 + seed + (method == "adv") * 3
                                                                    for i in range(30)])
    unfinished = job_path(grid.job("adv-s2"))
    unfinished.mkdir(parents=True)
    (unfinished / "config.toml").write_text("")
    (unfinished / "report.json").write_text(json.dumps({"status": "running", "step": 6}))
    return grid


def pending(grid_file) -> dict[str, list[str]]:
    done = run_cli("grid", "run", str(grid_file), "--dry-run", "--json")
    assert done.returncode == 0, done.stderr
    return {job["job"]: [step["step"] for step in job["steps"]] for job in json.loads(done.stdout)}


def test_a_deleted_grid_restored_from_its_archive_is_done_and_reports_the_same(grid, tmp_path):
    before = aggregate(grid)
    archive = tmp_path / "kept"
    done = run_cli("grid", "archive", str(grid.path), "--output", str(archive), "--json")
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["archived"] == ["base-s0", "base-s1", "base-s2", "adv-s0", "adv-s1"]
    names = set(result["files"])
    assert "base-s0/predictions/sst2_validation.jsonl" in names and "_grid/adv-s1/sst2_validation.json" in names
    assert not any("checkpoints" in n or n.startswith("adv-s2") for n in names)  # no weights, nothing unfinished
    assert sum(p.stat().st_size for p in archive.rglob("*") if p.is_file()) < 40_000

    shutil.rmtree(grid.output_dir)
    done = run_cli("grid", "restore", str(grid.path), "--from", str(archive), "--json")
    assert done.returncode == 0, done.stderr
    assert sorted(json.loads(done.stdout)["restored"]) == sorted(names)
    left = pending(grid.path)
    assert left.pop("adv-s2") == ["train", "sst2:validation"]  # still to do, from scratch
    assert left == {job: [] for job in left}
    after = aggregate(grid)
    assert after == before
    per_example = after["sst2:validation"]["rows"][1]["tests"]["per_example"]
    assert sorted(per_example) == ["0", "1"]  # McNemar found each paired seed's predictions again


def test_archiving_again_adds_what_finished_since(grid, tmp_path):
    archive = tmp_path / "kept"
    assert run_cli("grid", "archive", str(grid.path), "--output", str(archive), "--only", "base").returncode == 0
    first = json.loads((archive / "archive.json").read_text())
    assert first["jobs"] == ["base-s0", "base-s1", "base-s2"]
    done = run_cli("grid", "archive", str(grid.path), "--output", str(archive), "--only", "adv-s0")
    assert done.returncode == 0, done.stderr
    assert "archived 1 jobs (adv-s0)" in done.stdout
    second = json.loads((archive / "archive.json").read_text())
    assert second["jobs"] == ["adv-s0", "base-s0", "base-s1", "base-s2"]
    assert set(first["files"]) < set(second["files"])


def test_restore_never_writes_over_a_file(grid, tmp_path):
    archive = tmp_path / "kept"
    assert run_cli("grid", "archive", str(grid.path), "--output", str(archive)).returncode == 0
    done = run_cli("grid", "restore", str(grid.path), "--from", str(archive), "--json")
    assert done.returncode == 0, done.stderr  # everything there already, byte for byte: nothing to copy
    assert json.loads(done.stdout)["restored"] == []

    shutil.rmtree(grid.output_dir / "base-s1")
    changed = result_path(grid, grid.job("adv-s0"), grid.spec.evaluate[0])
    changed.write_text('{"accuracy": 0.1}')
    done = run_cli("grid", "restore", str(grid.path), "--from", str(archive))
    assert_one_line_error(done, str(changed), "other contents", "nothing restored")
    assert changed.read_text() == '{"accuracy": 0.1}'
    assert not (grid.output_dir / "base-s1").exists()  # refused before anything was copied


def test_foreign_folders_are_refused_in_one_line(grid, tmp_path):
    foreign = tmp_path / "notes"
    foreign.mkdir()
    (foreign / "todo.txt").write_text("keep me")
    assert_one_line_error(run_cli("grid", "archive", str(grid.path), "--output", str(foreign)),
                          "holds other files")
    assert_one_line_error(run_cli("grid", "restore", str(grid.path), "--from", str(foreign)),
                          "not an archive of `advcl grid archive`")
    assert [p.name for p in foreign.iterdir()] == ["todo.txt"]

    other = tmp_path / "other"
    (other / "runs").mkdir(parents=True)
    (other / "archive.json").write_text(json.dumps({"output_dir": "elsewhere", "files": []}))
    assert_one_line_error(run_cli("grid", "restore", str(grid.path), "--from", str(other)), "elsewhere")
    (other / "archive.json").write_text(json.dumps({"output_dir": str(grid.output_dir), "files": ["../x"]}))
    assert_one_line_error(run_cli("grid", "restore", str(grid.path), "--from", str(other)), "outside the archive")


def test_a_model_rows_predictions_are_kept(tmp_path, tiny_model_dir):
    recipe = write_tiny_recipe(tmp_path, tiny_model_dir)
    path = write_two_method_grid(tmp_path, recipe, f'[[model]]\nname = "tiny"\npath = "{tiny_model_dir}"\n'
                                                   '[[evaluate]]\ndata = "sst2:validation"\n')
    grid = load_grid(path)
    job = next(j for j in grid.jobs if j.kind == "model")
    result = result_path(grid, job, grid.spec.evaluate[0])
    result.parent.mkdir(parents=True, exist_ok=True)
    kept = result.with_name("sst2_validation.predictions.jsonl")
    kept.write_text('{"text": "t0", "label": "pos", "prediction": "neg"}\n')
    result.write_text(json.dumps({"accuracy": 0.0, "predictions": str(kept)}))
    archive = tmp_path / "kept"
    assert run_cli("grid", "archive", str(path), "--output", str(archive)).returncode == 0
    shutil.rmtree(grid.output_dir)
    assert run_cli("grid", "restore", str(path), "--from", str(archive)).returncode == 0
    assert kept.read_text() == '{"text": "t0", "label": "pos", "prediction": "neg"}\n'


def test_only_a_finished_perturb_is_kept(tmp_path, tiny_model_dir):
    """An unfinished perturb's folder holds rows advcl perturb resumes from; the job is not done, so it stays out."""
    recipe = write_tiny_recipe(tmp_path, tiny_model_dir)
    tables = "".join(f'[[perturb]]\nname = "{name}"\nattack = "pwws"\nmodel = "{tiny_model_dir}"\ndata = '
                     '"sst2:train"\n' for name in ("made", "halfway"))
    path = write_two_method_grid(tmp_path, recipe, tables + '[[evaluate]]\ndata = "sst2:validation"\n')
    grid = load_grid(path)
    for name in ("made", "halfway"):
        rows = grid.output_dir / name / "train.jsonl"
        rows.parent.mkdir(parents=True)
        rows.write_text('{"text": "a bad film", "label": "neg"}\n')
    (grid.output_dir / "_grid" / "made").mkdir(parents=True)
    (grid.output_dir / "_grid" / "made" / "perturb.json").write_text('{"examples": 1}')
    archive = tmp_path / "kept"
    done = run_cli("grid", "archive", str(path), "--output", str(archive), "--only", "made", "--only", "halfway",
                   "--json")
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["archived"] == ["made"]
    assert sorted(result["files"]) == ["_grid/made/perturb.json", "made/train.jsonl"]
