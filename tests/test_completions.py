"""Shell completion: the shipped scripts are what the CLI generates, and bash completes commands, recipe
paths, component kinds and registered names through them."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from advcl.completion import recipe_overrides
from conftest import ROOT

SCRIPTS = {"bash": "advcl.bash", "zsh": "_advcl", "fish": "advcl.fish"}
ADVCL_BIN = Path(sys.executable).parent  # the venv's bin, where the advcl script is


def complete_in_bash(*words: str) -> list[str]:
    """Source completions/advcl.bash in a fresh bash, complete the last of ``words`` and return COMPREPLY."""
    script = (
        f"source {ROOT / 'completions' / SCRIPTS['bash']}\n"
        f"COMP_WORDS=({' '.join(words)}); COMP_CWORD={len(words) - 1}\n"
        f"_advcl_completion advcl {words[-1] if len(words) > 1 else ''} {words[-2]}\n"
        'printf "%s\\n" "${COMPREPLY[@]}"\n'
    )
    env = {**os.environ, "PATH": f"{ADVCL_BIN}{os.pathsep}{os.environ['PATH']}"}
    done = subprocess.run(["bash", "-c", script], cwd=ROOT, capture_output=True, text=True, env=env, timeout=120)
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
    assert "pgd" in complete_in_bash("advcl", "eval", "--robust", "p")
    assert complete_in_bash("advcl", "export", "--format", "o") == ["onnx"]


def test_set_completes_recipe_keys_then_fixed_values():
    assert "train.lr=" in recipe_overrides("train.l")
    assert recipe_overrides("model.pooling=") == ["model.pooling=auto", "model.pooling=cls", "model.pooling=mean"]
    assert "objective.name=vanilla" in recipe_overrides("objective.name=va")
