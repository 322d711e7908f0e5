"""Issue 16, data loss: `--overwrite` and `run.name` never delete or write over anything but the run folder they
name, everything is checked before the previous run goes, and export never writes over a run folder.

Each test compares a listing of every file (path, size, mtime) under the test's folder before and after."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import pytest

from conftest import write_tiny_recipe


def listing(root: Path) -> dict[str, tuple[int, int]]:
    """Every file and folder under ``root``: relative path -> (size, mtime_ns) for a file, (-1, 0) for a folder
    (whose mtime moves when an entry is renamed in and out of it)."""
    found = {}
    for path in sorted(root.rglob("*")):
        stat = path.lstat()
        found[str(path.relative_to(root))] = (-1, 0) if path.is_dir() else (stat.st_size, stat.st_mtime_ns)
    return found


def advcl(capsys, *args: str) -> tuple[int, str]:
    """Run the CLI in this process (as ``advcl ARGS``); return (exit status, stderr). A traceback fails the test."""
    from advcl.cli import main

    saved = sys.argv
    sys.argv = ["advcl", *args]
    try:
        main()
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    finally:
        sys.argv = saved
    return code, capsys.readouterr().err


def one_line(err: str) -> str:
    lines = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(lines) == 1, err
    assert "Traceback" not in err
    return lines[0]


@pytest.fixture(scope="module")
def trained(tmp_path_factory, tiny_model_dir):
    """A finished tiny run (4 steps) to copy into each test's folder."""
    from advcl.config.recipe import load_recipe
    from advcl.engine.session import start_training

    folder = tmp_path_factory.mktemp("overwrite")
    recipe = write_tiny_recipe(folder, tiny_model_dir, train={"epochs": 0, "max_steps": 4})
    start_training(load_recipe(recipe))
    return folder


@pytest.fixture
def workspace(tmp_path, trained, tiny_model_dir):
    """runs/tiny (a finished run), runs/other (a sibling run), notes.txt beside them, and the recipe."""
    shutil.copytree(trained / "runs" / "tiny", tmp_path / "runs" / "tiny")
    shutil.copytree(trained / "runs" / "tiny", tmp_path / "runs" / "other")
    (tmp_path / "runs" / "notes.txt").write_text("keep me")
    (tmp_path / "scratch" / "a" / "b" / "c").mkdir(parents=True)
    (tmp_path / "scratch" / "a" / "b" / "c" / "data.txt").write_text("keep me too")
    recipe = write_tiny_recipe(tmp_path, tiny_model_dir, train={"epochs": 0, "max_steps": 2})
    return tmp_path, recipe


@pytest.mark.parametrize("name", ["..", ".", "a/b", "/abs", "../escape", ".hidden", "x\\y"])
def test_run_name_must_be_a_plain_name_and_nothing_changes(capsys, workspace, name):
    root, recipe = workspace
    before = listing(root)
    code, err = advcl(capsys, "train", "-r", str(recipe), "--set", f"run.output_dir='{root}/scratch/a/b'",
                      "--set", f"run.name='{name}'", "--set", "model.name='/nonexistent'", "--overwrite")
    assert code == 2 and "'run.name'" in one_line(err)
    assert listing(root) == before


@pytest.mark.parametrize("bad", [
    "data.train='typo:train'", "model.name='/nonexistent'", "model.max_length=100000", "model.max_length=129",
    "data.validation='sst2:nosuchsplit'",
])
def test_overwrite_checks_everything_before_the_previous_run_goes(capsys, workspace, bad):
    root, recipe = workspace
    before = listing(root)
    code, err = advcl(capsys, "train", "-r", str(recipe), "--set", bad, "--overwrite")
    assert code == 2, err
    one_line(err)
    assert listing(root) == before


def test_overwrite_refuses_a_folder_that_is_not_a_run(capsys, workspace):
    root, recipe = workspace
    before = listing(root)
    code, err = advcl(capsys, "train", "-r", str(recipe), "--set", f"run.output_dir='{root}/scratch/a'",
                      "--set", "run.name='b'", "--overwrite")
    assert code == 2 and "only a run folder" in one_line(err)
    assert listing(root) == before


def test_a_failure_after_the_new_folder_is_written_puts_the_old_run_back(capsys, workspace, monkeypatch):
    """Fault injection: the objective cannot be built once the new config.toml and model/ are in place."""
    from advcl.engine import session
    from advcl.errors import BadInput

    root, recipe = workspace
    before = listing(root)

    def broken(*args, **kwargs):
        assert (root / "runs" / "tiny" / "model").is_dir()  # the new folder is in place when this fails
        raise BadInput("injected fault")

    monkeypatch.setattr(session, "create", broken)
    code, err = advcl(capsys, "train", "-r", str(recipe), "--overwrite")
    assert code == 2 and "injected fault" in one_line(err)
    assert listing(root) == before


def test_a_kill_while_writing_leaves_the_old_run(capsys, workspace, monkeypatch):
    """Fault injection: KeyboardInterrupt while the tokenizer is being written into the new folder (called below
    the CLI, whose Ctrl-C handling ends the process)."""
    from transformers import PreTrainedTokenizerBase

    from advcl.config.recipe import load_recipe
    from advcl.engine.session import start_training

    root, recipe = workspace
    before = listing(root)

    def interrupted(self, *args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(PreTrainedTokenizerBase, "save_pretrained", interrupted)
    with pytest.raises(KeyboardInterrupt):
        start_training(load_recipe(recipe), overwrite=True)
    assert listing(root) == before


def _dead_pid() -> int:
    import subprocess

    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_a_sigkilled_overwrite_is_undone_by_the_next_command(capsys, workspace):
    """SIGKILL after --overwrite renamed the old run aside and before the new one was in place: the next command
    removes the half-written new folder and puts the old run back, byte for byte, saying so."""
    root, recipe = workspace
    before = listing(root)
    runs, pid = root / "runs", _dead_pid()
    (runs / "tiny").rename(runs / f".tiny.replaced-{pid}")
    (runs / f".tiny.new-{pid}" / "model").mkdir(parents=True)
    code, err = advcl(capsys, "train", "--resume", str(runs / "tiny"))
    assert code == 2 and "already completed" in one_line(err)  # the finished old run, back in place
    assert "put back" in err and f".tiny.new-{pid}" in err
    assert listing(root) == before


def test_a_sigkilled_overwrite_after_the_new_run_is_in_place_names_the_old_one(capsys, workspace):
    root, recipe = workspace
    runs, pid = root / "runs", _dead_pid()
    shutil.copytree(runs / "tiny", runs / f".tiny.replaced-{pid}")
    (runs / f".tiny.replaced-{os.getpid()}").mkdir()  # a live process's: not touched, not named
    code, err = advcl(capsys, "train", "-r", str(recipe), "--overwrite")
    assert code == 0, err
    assert f"kept at {runs / f'.tiny.replaced-{pid}'}" in err and f"replaced-{os.getpid()}" not in err
    assert (runs / f".tiny.replaced-{pid}" / "config.toml").is_file()


def test_overwrite_replaces_the_run_and_only_it(capsys, workspace):
    root, recipe = workspace
    before = listing(root)
    code, err = advcl(capsys, "train", "-r", str(recipe), "--overwrite")
    assert code == 0, err
    after = listing(root)
    untouched = {k: v for k, v in before.items() if not k.startswith("runs/tiny")}
    assert {k: v for k, v in after.items() if not k.startswith("runs/tiny")} == untouched
    assert after["runs/tiny/config.toml"] != before["runs/tiny/config.toml"]
    assert not [k for k in after if Path(k).name.startswith(".")]  # no staging or replaced folder left behind


def test_a_run_stopped_before_model_can_be_resumed_and_restarted(capsys, workspace):
    """A folder with config.toml and no model/ (killed in between, by an older advcl): resume writes model/."""
    root, recipe = workspace
    half = root / "runs" / "tiny"
    for child in ("model", "checkpoints", "metrics.jsonl", "report.json"):
        path = half / child
        shutil.rmtree(path) if path.is_dir() else path.unlink()
    code, err = advcl(capsys, "train", "-r", str(recipe))
    assert code == 2 and "--resume" in one_line(err) and "before its model/" in err
    code, err = advcl(capsys, "train", "--resume", str(half))
    assert code == 0, err
    assert (half / "model" / "config.json").is_file() and (half / "checkpoints").is_dir()


@pytest.mark.parametrize("target", ["runs/tiny", "runs", "runs/tiny/model", "runs/other", "scratch/a"])
def test_export_never_writes_over_a_run_or_a_folder_that_is_not_an_export(capsys, workspace, target):
    root, _ = workspace
    before = listing(root)
    code, err = advcl(capsys, "export", "--model", str(root / "runs/tiny"), "--output", str(root / target),
                      "--overwrite")
    assert code == 2, err
    one_line(err)
    assert listing(root) == before


def test_export_overwrite_replaces_an_earlier_export(capsys, workspace):
    root, _ = workspace
    out = root / "exported"
    assert advcl(capsys, "export", "--model", str(root / "runs/tiny"), "--output", str(out))[0] == 0
    before = listing(root)
    code, err = advcl(capsys, "export", "--model", str(root / "runs/tiny"), "--output", str(out), "--overwrite")
    assert code == 0, err
    after = listing(root)
    assert {k: v for k, v in after.items() if not k.startswith("exported")} == {
        k: v for k, v in before.items() if not k.startswith("exported")}
    assert (out / "config.json").is_file()


@pytest.mark.parametrize("target", ["runs/other", "runs/other/plots"])
def test_report_never_writes_into_a_run_folder(capsys, workspace, target):
    root, _ = workspace
    before = listing(root)
    code, err = advcl(capsys, "report", str(root / "runs/tiny"), "--output", str(root / target), "--overwrite")
    assert code == 2 and "run folder" in one_line(err)
    assert listing(root) == before
