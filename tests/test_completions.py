"""Shell completion: the shipped scripts are what the CLI generates, and bash completes commands, recipe
paths, component kinds and registered names through them."""

import json
import os
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from advcl.completion import recipe_overrides
from conftest import ROOT

SCRIPTS = {"bash": "advcl.bash", "zsh": "_advcl", "fish": "advcl.fish"}
ADVCL_BIN = Path(sys.executable).parent  # the venv's bin, where the advcl script is


def complete_in_bash(*words: str, cwd: Path = ROOT) -> list[str]:
    """Source completions/advcl.bash in a fresh bash, complete the last of ``words`` and return COMPREPLY.
    ``words`` are COMP_WORDS as bash splits a line: ``--set model.pooling=me`` is ``model.pooling``, ``=``, ``me``
    under bash's default COMP_WORDBREAKS (which holds = and :)."""
    quoted = " ".join(shlex.quote(w) for w in words)
    script = (
        f"source {ROOT / 'completions' / SCRIPTS['bash']}\n"
        f"COMP_WORDS=({quoted}); COMP_CWORD={len(words) - 1}\n"
        f"_advcl_completion advcl {shlex.quote(words[-1]) if len(words) > 1 else ''} {shlex.quote(words[-2])}\n"
        'printf "%s\\n" "${COMPREPLY[@]}"\n'
    )
    env = {**os.environ, "PATH": f"{ADVCL_BIN}{os.pathsep}{os.environ['PATH']}"}
    done = subprocess.run(["bash", "-c", script], cwd=cwd, capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stdout.split()


@pytest.mark.parametrize("shell", sorted(SCRIPTS))
def test_shipped_scripts_are_what_the_cli_generates(shell):
    generated = subprocess.run(
        [str(ADVCL_BIN / "advcl")], env={**os.environ, "_ADVCL_COMPLETE": f"source_{shell}"},
        capture_output=True, text=True, timeout=60,
    )
    assert generated.stdout == (ROOT / "completions" / SCRIPTS[shell]).read_text(), "run completions/generate.sh"


def test_bash_completes_a_command():
    assert complete_in_bash("advcl", "tr") == ["train"]


def test_bash_completes_recipe_paths_kinds_and_perturbers():
    assert "recipes/vanilla_sst2.toml" in complete_in_bash("advcl", "train", "--recipe", "recipes/va")
    assert complete_in_bash("advcl", "plugins", "--kind", "ob") == ["objective"]
    assert complete_in_bash("advcl", "eval", "--robust", "") == ["pgd"]  # fgm, fgsm, smart would be refused
    assert complete_in_bash("advcl", "export", "--format", "o") == ["onnx"]


def test_set_completes_recipe_keys_then_fixed_values():
    assert "train.lr=" in recipe_overrides("train.l")
    assert recipe_overrides("model.pooling=") == ["model.pooling=auto", "model.pooling=cls", "model.pooling=mean"]
    assert "objective.name=vanilla" in recipe_overrides("objective.name=va")


def test_set_completes_across_bash_word_breaks():
    # bash split the word at "=": answer with what readline replaces, the text after the "="
    assert complete_in_bash("advcl", "train", "--set", "model.pooling", "=", "me") == ["mean"]
    assert complete_in_bash("advcl", "train", "--set", "model.pooling", "=") == ["auto", "cls", "mean"]
    assert complete_in_bash("advcl", "train", "--set", "model.classifier_input", "=", "") == []  # after a space
    assert "vanilla" in complete_in_bash("advcl", "train", "--set", "objective.name", "=", "va")
    # a COMP_WORDBREAKS without "=": the word arrives whole and goes back whole
    assert complete_in_bash("advcl", "train", "--set", "model.pooling=me") == ["model.pooling=mean"]
    assert "train.lr=" in complete_in_bash("advcl", "train", "--set", "train.l")


def test_data_completes_catalogue_splits_files_and_dataset_folders(tmp_path):
    assert complete_in_bash("advcl", "eval", "--data", "sst2", ":") == ["test", "train", "validation"]
    assert complete_in_bash("advcl", "eval", "--data", "sst2", ":", "va") == ["validation"]
    assert complete_in_bash("advcl", "attack", "-a", "pwws", "--data", "sst") == [
        "sst2:test", "sst2:train", "sst2:validation"]
    assert complete_in_bash("advcl", "eval", "--data", "sst2:va") == ["sst2:validation"]  # ":" not a word break
    folder = tmp_path / "runs" / "adv" / "sst2_pwws"
    folder.mkdir(parents=True)
    (folder / "meta.json").write_text(json.dumps({"task": "classification", "labels": ["negative", "positive"]}))
    (folder / "train.jsonl").write_text("")
    (tmp_path / "reviews.csv").write_text("text,label\n")
    (tmp_path / "notes.txt").write_text("")
    assert complete_in_bash("advcl", "eval", "--data", "rev", cwd=tmp_path) == ["reviews.csv"]
    assert complete_in_bash("advcl", "perturb", "--data", "runs/adv/s", cwd=tmp_path) == [
        "runs/adv/sst2_pwws/", "runs/adv/sst2_pwws:"]
    assert complete_in_bash("advcl", "eval", "--data", "runs/adv/sst2_pwws", ":", cwd=tmp_path) == ["train"]


def test_recipe_completes_from_any_folder(tmp_path):
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "simcse.toml").write_text("")
    (tmp_path / "notes.txt").write_text("")
    assert complete_in_bash("advcl", "train", "--recipe", "", cwd=tmp_path) == ["mine/"]
    assert complete_in_bash("advcl", "train", "--recipe", "mine/s", cwd=tmp_path) == ["mine/simcse.toml"]
    assert complete_in_bash("advcl", "train", "--recipe", str(ROOT / "recipes" / "quick"), cwd=tmp_path) == [
        str(ROOT / "recipes" / "quickstart.toml")]


@pytest.mark.parametrize(("words", "expected"), [
    (("advcl", "attack", "--attack", "pw"), ["pwws"]),
    (("advcl", "perturb", "-a", "text"), ["textbugger", "textfooler"]),
    (("advcl", "eval", "--suite", "a"), ["alignment"]),
    (("advcl", "perturb", "--perturber", ""), ["pgd"]),  # --space embedding takes PGD's options
    (("advcl", "eval", "--protocol", ""), ["senteval", "fast"]),
    (("advcl", "eval", "--checkpoint", ""), ["best", "last"]),
    (("advcl", "eval", "--norm", "l"), ["l2", "linf"]),
    (("advcl", "perturb", "--space", "e"), ["embedding"]),
    (("advcl", "attack", "--runtime", "o"), ["onnx"]),
    (("advcl", "attack", "--device", "c"), ["cpu", "cuda"]),
])
def test_dynamic_and_fixed_option_values(words, expected):
    assert complete_in_bash(*words) == expected


def complete_interactively(line: str, expected: str) -> str:
    """Type ``line`` and a TAB into an interactive bash (readline, its own word splitting) and return what the
    terminal shows once ``expected`` appears (or after 90 s)."""
    import pty
    import select
    import signal
    import time

    pid, fd = pty.fork()
    if pid == 0:  # the child: an interactive bash with the shipped completion
        os.chdir(ROOT)
        os.execvpe("bash", ["bash", "--norc", "--noprofile", "-i"],
                   {**os.environ, "PS1": "$ ", "TERM": "dumb", "INPUTRC": "/dev/null",
                    "PATH": f"{ADVCL_BIN}{os.pathsep}{os.environ['PATH']}"})
    shown = b""
    try:
        os.write(fd, f"source {ROOT / 'completions' / SCRIPTS['bash']}\n".encode() + line.encode() + b"\t")
        deadline = time.monotonic() + 90
        while expected.encode() not in shown and time.monotonic() < deadline:
            if select.select([fd], [], [], 0.1)[0]:
                shown += os.read(fd, 65536)
    finally:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        os.close(fd)
    return shown.decode(errors="replace")


@pytest.mark.parametrize(("line", "completed"), [
    ("advcl train --set model.pooling=me", "advcl train --set model.pooling=mean "),
    ("advcl eval --data sst2:va", "advcl eval --data sst2:validation "),
])
def test_readline_completes_across_its_own_word_breaks(line, completed):
    assert completed in complete_interactively(line, completed)
