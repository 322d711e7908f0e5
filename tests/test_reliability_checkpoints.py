"""Issue 16: no checkpoint called good is bad, a full disk is one line and exit 1, corrupt artefacts are one line
and exit 2 naming the file, and `--resume` falls back past a corrupt newest checkpoint."""

from __future__ import annotations

import errno
import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from conftest import write_tiny_recipe
from test_reliability_overwrite import advcl, one_line


def finite_file(path: Path) -> bool:
    return all(torch.isfinite(t).all() for t in load_file(path).values() if t.is_floating_point())


@pytest.fixture(scope="module")
def finished(tmp_path_factory, tiny_model_dir):
    """A tiny run of 6 steps with a checkpoint at every step (the newest 3 and the best kept)."""
    from advcl.config.recipe import load_recipe
    from advcl.engine.session import start_training

    folder = tmp_path_factory.mktemp("ckpt")
    recipe = write_tiny_recipe(folder, tiny_model_dir, train={"epochs": 0, "max_steps": 6, "save_every": 1,
                                                             "eval_every": 6, "keep_checkpoints": 3})
    start_training(load_recipe(recipe))
    return folder / "runs" / "tiny"


@pytest.fixture
def run(tmp_path, finished):
    """A copy of the finished run, marked as interrupted so that it can be resumed."""
    copy = tmp_path / "tiny"
    shutil.copytree(finished, copy)
    report = json.loads((copy / "report.json").read_text())
    (copy / "report.json").write_text(json.dumps({**report, "status": "interrupted"}))
    return copy


def test_a_nonfinite_state_is_never_saved_and_the_kept_checkpoint_is_finite(tmp_path, tiny_model_dir, monkeypatch):
    """Fault injection: the optimizer step of step 3 leaves a weight NaN while the loss stays finite."""
    from advcl.config.recipe import load_recipe
    from advcl.engine.session import start_training
    from advcl.engine.trainer import Trainer
    from advcl.errors import RunFailed
    from advcl.runs import load_model

    original = Trainer.train_step

    def poisoned(self):
        out = original(self)
        if self.state.step == 2:  # the step that becomes step 3
            with torch.no_grad():
                next(self.model.parameters())[0, 0] = float("nan")
        return out

    monkeypatch.setattr(Trainer, "train_step", poisoned)
    recipe = write_tiny_recipe(tmp_path, tiny_model_dir, train={"epochs": 0, "max_steps": 6, "save_every": 1,
                                                               "eval_every": 6})
    with pytest.raises(RunFailed) as failed:
        start_training(load_recipe(recipe))
    run = tmp_path / "runs" / "tiny"
    names = sorted(p.name for p in (run / "checkpoints").iterdir())
    assert names == ["step-0000001", "step-0000002"]
    assert "step-0000002 is kept" in str(failed.value) and "NaN" in str(failed.value)
    for name in names:
        assert finite_file(run / "checkpoints" / name / "model.safetensors")
        assert finite_file(run / "checkpoints" / name / "optimizer.safetensors")
    report = json.loads((run / "report.json").read_text())
    assert report["status"] == "failed" and "step-0000002" in report["message"]
    assert load_model(str(run), "last").source.endswith("step-0000002")


def test_eval_and_export_refuse_a_nonfinite_checkpoint_naming_the_file(capsys, run, tmp_path):
    newest = run / "checkpoints" / "step-0000006" / "model.safetensors"
    weights = load_file(newest)
    name = next(k for k, v in weights.items() if v.is_floating_point())
    weights[name] = torch.full_like(weights[name], float("nan"))
    save_file(weights, newest)
    code, err = advcl(capsys, "export", "--model", str(run), "--output", str(tmp_path / "out"), "--checkpoint", "last")
    assert code == 2 and str(newest) in one_line(err) and "NaN" in err


def _truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def _bad_header(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[8:20] = b"not a header"
    path.write_bytes(bytes(data))


def _wrong_shape(path: Path) -> None:
    weights = load_file(path)
    name = next(k for k, v in weights.items() if v.dim() == 2)
    weights[name] = torch.zeros(3, 3)
    save_file(weights, path)


CORRUPTIONS = {
    "truncated weights": ("model.safetensors", _truncate),
    "empty weights": ("model.safetensors", lambda p: p.write_bytes(b"")),
    "bad header": ("model.safetensors", _bad_header),
    "wrong shape": ("model.safetensors", _wrong_shape),
    "garbage state.json": ("state.json", lambda p: p.write_text("{garbage")),
    "state.json a list": ("state.json", lambda p: p.write_text("[1, 2]")),
    "garbage optimizer.json": ("optimizer.json", lambda p: p.write_bytes(b"\xff\xfe")),
    "truncated optimizer": ("optimizer.safetensors", _truncate),
    "missing rng": ("rng-0.safetensors", lambda p: p.unlink()),
}


@pytest.mark.parametrize("corruption", list(CORRUPTIONS))
def test_resume_falls_back_past_a_corrupt_newest_checkpoint(capsys, run, corruption):
    file, corrupt = CORRUPTIONS[corruption]
    corrupt(run / "checkpoints" / "step-0000006" / file)
    code, err = advcl(capsys, "train", "--resume", str(run))
    assert code == 0, err
    assert "Traceback" not in err
    assert "step-0000006 is corrupt" in err and "falling back to step-0000005" in err and file in err
    assert (run / "checkpoints" / "step-0000006.corrupt").is_dir()  # kept aside for inspection
    assert finite_file(run / "checkpoints" / "step-0000006" / "model.safetensors")  # the step saved afresh
    assert json.loads((run / "report.json").read_text())["status"] == "completed"


@pytest.mark.parametrize("corruption", ["truncated weights", "bad header", "wrong shape", "garbage state.json"])
def test_export_names_the_corrupt_file(capsys, run, tmp_path, corruption):
    file, corrupt = CORRUPTIONS[corruption]
    corrupt(run / "checkpoints" / "step-0000006" / file)
    code, err = advcl(capsys, "export", "--model", str(run), "--output", str(tmp_path / "out"))  # best: step 6
    assert code == 2 and file in one_line(err)


@pytest.mark.parametrize("target, damage", [
    ("report.json", lambda p: p.write_text("{not json")),
    ("metrics.jsonl", lambda p: p.write_bytes(b'{"step": 1}\n\xff\xfe\n')),
    ("config.toml", lambda p: p.write_text("[run\n")),
])
def test_a_corrupt_run_file_is_named_on_resume(capsys, run, target, damage):
    damage(run / target)
    code, err = advcl(capsys, "train", "--resume", str(run))
    assert code == 2 and target in one_line(err)


def test_a_garbage_model_config_is_named_on_export(capsys, run, tmp_path):
    (run / "model" / "config.json").write_text("{garbage")
    code, err = advcl(capsys, "export", "--model", str(run), "--output", str(tmp_path / "out"))
    assert code == 2 and "config.json" in one_line(err)


def test_every_checkpoint_corrupt_is_refused_not_restarted(capsys, run):
    for folder in (run / "checkpoints").iterdir():
        (folder / "model.safetensors").write_bytes(b"")
    before = sorted(p.name for p in (run / "checkpoints").iterdir())
    code, err = advcl(capsys, "train", "--resume", str(run))
    assert code == 2 and "no checkpoint" in one_line(err)
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == before


def test_stray_folders_are_ignored_and_orphans_removed_on_resume(capsys, run):
    checkpoints = run / "checkpoints"
    shutil.copytree(checkpoints / "step-0000006", checkpoints / "step-0000006 copy")
    (checkpoints / ".tmp-step-0000007-12345").mkdir()
    (checkpoints / ".tmp-step-0000007-12345" / "model.safetensors").write_bytes(b"half")
    code, err = advcl(capsys, "train", "--resume", str(run))
    assert code == 0, err
    assert "resuming" in err and "step-0000006" in err
    assert (checkpoints / "step-0000006 copy").is_dir()
    assert not list(checkpoints.glob(".tmp-*"))


# -- disk full -----------------------------------------------------------------------------------------------


def test_safetensors_disk_full_is_exit_1_with_the_last_good_checkpoint_kept(capsys, tmp_path, tiny_model_dir,
                                                                            monkeypatch):
    """Fault injection: safetensors reports ENOSPC as its own SafetensorError, at the third checkpoint."""
    from safetensors import SafetensorError

    from advcl.engine import checkpoint

    calls = {"n": 0}
    real = checkpoint.save_file

    def full(tensors, path, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] > 8:  # model + optimizer + rng per checkpoint (a vanilla run has no objective state)
            raise SafetensorError("Error while serializing: IoError(Os { code: 28, kind: StorageFull, "
                                  'message: "No space left on device" })')
        return real(tensors, path, *args, **kwargs)

    monkeypatch.setattr(checkpoint, "save_file", full)
    recipe = write_tiny_recipe(tmp_path, tiny_model_dir, train={"epochs": 0, "max_steps": 6, "save_every": 1})
    code, err = advcl(capsys, "train", "-r", str(recipe))
    run = tmp_path / "runs" / "tiny"
    assert code == 1 and "disk full" in one_line(err)
    assert not list((run / "checkpoints").glob(".tmp-*"))
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == ["step-0000001", "step-0000002"]
    assert json.loads((run / "report.json").read_text())["status"] == "failed"


def test_metrics_disk_full_is_exit_1(capsys, tmp_path, tiny_model_dir, monkeypatch):
    from advcl.runs import RunFolder

    def full(self, row):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(RunFolder, "append_metrics", full)
    recipe = write_tiny_recipe(tmp_path, tiny_model_dir, train={"epochs": 0, "max_steps": 4})
    code, err = advcl(capsys, "train", "-r", str(recipe))
    assert code == 1 and "disk full" in one_line(err)
    assert json.loads((tmp_path / "runs" / "tiny" / "report.json").read_text())["status"] == "failed"


def test_tokenizer_disk_full_leaves_nothing(capsys, tmp_path, tiny_model_dir, monkeypatch):
    from transformers import PreTrainedTokenizerBase

    def full(self, *args, **kwargs):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(PreTrainedTokenizerBase, "save_pretrained", full)
    recipe = write_tiny_recipe(tmp_path, tiny_model_dir)
    code, err = advcl(capsys, "train", "-r", str(recipe))
    assert code == 1 and "No space left" in one_line(err)
    assert not (tmp_path / "runs").exists() or not list((tmp_path / "runs").iterdir())


@pytest.fixture
def small_disk(tmp_path):
    """A 64 MiB tmpfs (root only: skipped otherwise, or where mounting is not allowed)."""
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    mount = tmp_path / "disk"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64m", "tmpfs", str(mount)], capture_output=True)
    if done.returncode:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")
    yield mount
    subprocess.run(["umount", str(mount)], check=True)


def test_a_really_full_disk(capsys, small_disk, tiny_model_dir, monkeypatch):
    """A real ENOSPC: once the first checkpoint is written, a filler file takes every free block of the tmpfs."""
    from advcl.engine.trainer import Trainer

    original = Trainer.save

    def save_then_fill(self):
        original(self)
        filler = small_disk / "filler"
        if not filler.exists():
            with filler.open("wb") as handle:
                try:
                    while True:
                        handle.write(b"\0" * (1 << 16))
                        handle.flush()
                except OSError:
                    pass

    monkeypatch.setattr(Trainer, "save", save_then_fill)
    recipe = write_tiny_recipe(small_disk, tiny_model_dir, train={"epochs": 0, "max_steps": 6, "save_every": 2,
                                                                 "log_every": 1})
    code, err = advcl(capsys, "train", "-r", str(recipe))
    run = small_disk / "runs" / "tiny"
    assert code == 1 and "disk full" in one_line(err), err
    assert [p.name for p in (run / "checkpoints").iterdir()] == ["step-0000002"]
    assert finite_file(run / "checkpoints" / "step-0000002" / "model.safetensors")
    assert json.loads((run / "report.json").read_text())["status"] == "failed"
    assert not list(run.rglob("*.tmp*"))
