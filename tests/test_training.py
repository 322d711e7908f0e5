"""Training end to end on a tiny random model: run folder, resume after SIGKILL / Ctrl-C, NaN stop."""

import json
import signal
import subprocess
import sys
import time
from dataclasses import dataclass

import pytest
import torch

from advcl.errors import RunFailed
from conftest import run_cli, train_until_interrupted, write_tiny_recipe

LONG = {"data": {"max_train_examples": 240}, "train": {"epochs": 2, "batch_size": 8, "eval_every": 10, "save_every": 3, "log_every": 1}}


def final_files(run_dir):
    """Bytes of the last checkpoint's weights and optimizer state, and the validation rows."""
    last = sorted((run_dir / "checkpoints").glob("step-*"))[-1]
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    return (
        last.name,
        (last / "model.safetensors").read_bytes(),
        (last / "optimizer.safetensors").read_bytes(),
        [r for r in rows if r["split"] == "validation"],
        [r["step"] for r in rows if r["split"] == "train"],
    )


@pytest.fixture(scope="module")
def reference(tmp_path_factory, tiny_model_dir):
    """An uninterrupted run of the long tiny recipe."""
    folder = tmp_path_factory.mktemp("reference")
    recipe = write_tiny_recipe(folder, tiny_model_dir, **LONG)
    done = run_cli("train", "--recipe", str(recipe))
    assert done.returncode == 0, done.stderr
    return folder / "runs" / "tiny"


def test_run_folder_contents(reference):
    assert (reference / "config.toml").is_file()
    assert (reference / "model" / "config.json").is_file() and (reference / "model" / "vocab.txt").is_file()
    report = json.loads((reference / "report.json").read_text())
    assert report["status"] == "completed" and report["step"] == report["total_steps"] == 60
    assert report["best_step"] % 10 == 0 or report["best_step"] == 60
    names = [p.name for p in (reference / "checkpoints").iterdir()]
    assert "step-0000060" in names and not any(n.startswith(".tmp") for n in names)
    for name in ("model.safetensors", "optimizer.safetensors", "optimizer.json", "rng-0.safetensors", "state.json"):
        assert (reference / "checkpoints" / "step-0000060" / name).is_file()
    rows = [json.loads(line) for line in (reference / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows if r["split"] == "train"] == list(range(1, 61))
    assert [r["step"] for r in rows if r["split"] == "validation"] == list(range(10, 61, 10))
    assert {"loss", "lr", "examples_per_s"} <= rows[0].keys()


@pytest.mark.parametrize("kill_after_rows", [4, 23, 47])
def test_sigkill_then_resume_is_bit_identical(tmp_path, tiny_model_dir, reference, kill_after_rows):
    recipe = write_tiny_recipe(tmp_path, tiny_model_dir, **LONG)
    run_dir = tmp_path / "runs" / "tiny"
    proc = subprocess.Popen([sys.executable, "-m", "advcl", "train", "--recipe", str(recipe)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    metrics = run_dir / "metrics.jsonl"
    deadline = time.time() + 300
    while time.time() < deadline and proc.poll() is None:
        if metrics.is_file() and metrics.read_text().count("\n") >= kill_after_rows:
            break
        time.sleep(0.005)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    report = json.loads((run_dir / "report.json").read_text()) if (run_dir / "report.json").exists() else {}
    assert report.get("status") != "completed", "the run finished before it could be killed"
    resumed = run_cli("train", "--resume", str(run_dir))
    assert resumed.returncode == 0, resumed.stderr
    assert final_files(run_dir) == final_files(reference)


def test_ctrl_c_saves_a_checkpoint_and_resume_matches(tmp_path, tiny_model_dir, reference):
    recipe = write_tiny_recipe(tmp_path, tiny_model_dir, **LONG)
    run_dir = tmp_path / "runs" / "tiny"
    returncode, err = train_until_interrupted(recipe, run_dir)
    assert returncode == 130, err
    last_line = err.strip().splitlines()[-1]
    assert last_line.startswith("interrupted at step ") and "checkpoint saved" in last_line  # not an error:
    step = int(last_line.split("step ")[1].split(";")[0])
    assert (run_dir / "checkpoints" / f"step-{step:07d}").is_dir()
    assert json.loads((run_dir / "report.json").read_text())["status"] == "interrupted"
    assert "Traceback" not in err
    resumed = run_cli("train", "--resume", str(run_dir))
    assert resumed.returncode == 0, resumed.stderr
    assert final_files(run_dir) == final_files(reference)


def test_resume_of_a_completed_run_is_refused(reference):
    done = run_cli("train", "--resume", str(reference))
    assert done.returncode == 2 and "already completed" in done.stderr


def test_nan_loss_stops_with_the_last_good_checkpoint(tmp_path, tiny_model_dir, monkeypatch):
    from advcl import plugins
    from advcl.config.recipe import load_recipe
    from advcl.engine.session import start_training
    from advcl.objectives.base import Objective, StepOutput

    class BlowsUp(Objective):
        """Vanilla until step 5, then a NaN loss."""

        name = "blows_up"

        @dataclass
        class Config:
            pass

        def step(self, batch, model, ctx):
            out = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"])
            loss = torch.nn.functional.cross_entropy(out.logits, batch["labels"])
            return StepOutput(loss * float("nan") if ctx.step == 5 else loss)

    reg = plugins.load_registry(autoload=False)
    reg.add("objective", BlowsUp, "test", "0")
    monkeypatch.setattr(plugins, "_REGISTRY", reg)
    recipe = load_recipe(write_tiny_recipe(tmp_path, tiny_model_dir, objective={"name": "blows_up"}))
    with pytest.raises(RunFailed, match=r"loss became nan at step 6: run stopped; the last good checkpoint step-0000004 is kept"):
        start_training(recipe)
    run_dir = tmp_path / "runs" / "tiny"
    assert sorted(p.name for p in (run_dir / "checkpoints").iterdir()) == ["step-0000003", "step-0000004"]
    assert json.loads((run_dir / "report.json").read_text())["status"] == "failed"
