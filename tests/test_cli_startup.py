"""CLI start-up: ``--help`` and shell completion never import torch, and Ctrl-C at any moment of start-up
ends with exit status 130 and one line, never a traceback (issue 13; issue 16's "Ctrl-C in the first second")."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from conftest import ROOT

# Runs the real entry point with the given argv and environment, then reports on stderr which heavy
# libraries ended up imported (main() always leaves through SystemExit).
PROBE = """
import sys
sys.argv = ["advcl", *sys.argv[1:]]
from advcl.cli import main
try:
    main()
except SystemExit:
    pass
heavy = [m for m in ("torch", "transformers", "datasets", "textattack", "numpy") if m in sys.modules]
print("HEAVY=" + ",".join(heavy), file=sys.stderr)
"""


def imported_heavy(*args: str, env: dict | None = None) -> tuple[list[str], str]:
    done = subprocess.run(
        [sys.executable, "-c", PROBE, *args], cwd=ROOT, capture_output=True, text=True, timeout=120,
        env={**os.environ, **(env or {})},
    )
    line = [x for x in done.stderr.splitlines() if x.startswith("HEAVY=")]
    assert line, done.stderr
    heavy = line[-1].removeprefix("HEAVY=")
    return (heavy.split(",") if heavy else []), done.stdout


def completion_env(*words: str) -> dict:
    """Click's bash completion protocol: the words typed so far and the index of the one being completed."""
    return {"_ADVCL_COMPLETE": "complete_bash", "COMP_WORDS": " ".join(words), "COMP_CWORD": str(len(words) - 1)}


@pytest.mark.parametrize("args", [["--help"], ["train", "--help"], ["eval", "--help"], []])
def test_help_imports_no_heavy_library(args):
    heavy, out = imported_heavy(*args)
    assert heavy == []
    assert "Usage" in out or args == []  # no arguments prints the help too (on stdout or stderr)


def test_a_recipe_key_typo_is_refused_before_torch_loads(tmp_path):
    """A misspelt key is a one-line error from the recipe check alone: the engine (torch) is imported only for a
    recipe that will train."""
    recipe = tmp_path / "typo.toml"
    recipe.write_text('[model]\nname = "all-MiniLM-L6-v2"\n[data]\ntrain = "sst2:train"\n[train]\nlrr = 1\n')
    heavy, _ = imported_heavy("train", "--recipe", str(recipe))
    assert heavy == []
    done = subprocess.run([sys.executable, "-m", "advcl", "train", "--recipe", str(recipe)], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and done.stderr.strip() == "error: unknown recipe key 'train.lrr' (did you mean 'train.lr'?)"


@pytest.mark.parametrize(
    ("words", "expected"),
    [
        (("advcl", "tr"), "train"),
        (("advcl", "train", "--recipe", "recipes/va"), "recipes/vanilla_sst2.toml"),
        (("advcl", "train", "--set", "train.l"), "train.lr="),
        (("advcl", "train", "--set", "model.pooling="), "model.pooling=mean"),
        (("advcl", "plugins", "--kind", "ob"), "objective"),
    ],
)
def test_completion_imports_no_heavy_library(words, expected):
    heavy, out = imported_heavy(env=completion_env(*words))
    assert expected in out.split()  # the request really completed
    assert heavy == []


def test_component_names_complete_from_a_cache_without_torch(tmp_path):
    """Registered names need the plugin registry (torch): the first request loads it and keeps the names in
    $XDG_CACHE_HOME/advcl/completion.json; later ones read that file while advcl and its plugins are unchanged."""
    env = {**completion_env("advcl", "eval", "--robust", "p"), "XDG_CACHE_HOME": str(tmp_path)}
    heavy, out = imported_heavy(env=env)
    assert out.split() == ["pgd"] and "torch" in heavy
    heavy, out = imported_heavy(env=env)
    assert out.split() == ["pgd"] and heavy == []
    heavy, out = imported_heavy(env={**env, **completion_env("advcl", "train", "--set", "objective.name=ca")})
    assert out.split() == ["objective.name=carl", "objective.name=cat"] and heavy == []
    cache = tmp_path / "advcl" / "completion.json"
    kept = json.loads(cache.read_text())
    cache.write_text(json.dumps({"fingerprint": "another advcl", "names": {**kept["names"], "robust": ["pbogus"]}}))
    heavy, out = imported_heavy(env=env)  # a stale cache is rebuilt, not believed
    assert out.split() == ["pgd"] and "torch" in heavy


def interrupt(args: list[str], when) -> subprocess.CompletedProcess:
    """Start ``python -m advcl ARGS``, wait until ``when(pid)`` is true, send SIGINT and collect the result."""
    process = subprocess.Popen(
        [sys.executable, "-m", "advcl", *args], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    deadline = time.monotonic() + 60
    while not when(process.pid) and time.monotonic() < deadline and process.poll() is None:
        time.sleep(0.002)
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=120)
    return subprocess.CompletedProcess(process.args, process.returncode, out, err)


def mapped(library: str):
    """True once the process has loaded ``library`` (a shared object), i.e. is in the middle of that import."""

    def check(pid: int) -> bool:
        try:
            with open(f"/proc/{pid}/maps") as maps:
                return library in maps.read()
        except OSError:
            return False

    return check


def after(seconds: float):
    """True ``seconds`` after the first check (made right after the process starts)."""
    started: list[float] = []

    def check(pid: int) -> bool:
        if not started:
            started.append(time.monotonic())
        return time.monotonic() - started[0] >= seconds

    return check


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/PID/maps")
@pytest.mark.parametrize(
    "when",
    [mapped("libtorch_cpu"), mapped("libtorch_python"), after(0.3), after(1.0)],
    ids=["torch-cpu-loading", "torch-python-loading", "0.3s", "1.0s"],
)
def test_ctrl_c_during_start_up_is_one_line_and_130(tiny_model_dir, when):
    # eval of a model on SST-2: its first seconds import torch and transformers, then load the model and data
    done = interrupt(["eval", "--model", str(tiny_model_dir), "--data", "sst2:validation"], when)
    assert done.returncode == 130, (done.returncode, done.stderr)
    assert "Traceback" not in done.stderr and "Error" not in done.stderr
    assert done.stderr.strip().splitlines() == ["interrupted (Ctrl-C)"]
