"""What the issue-17 tests (tests/test_daily_*.py) share: one small, quick run of the tiny model."""

from pathlib import Path

from conftest import run_cli, write_tiny_recipe

QUICK = {"train": {"epochs": 1, "eval_every": 0, "save_every": 0},
         "data": {"max_train_examples": 16, "max_eval_examples": 16}}


def train_tiny(folder: Path, model_dir: Path, **sections) -> Path:
    """Train the tiny model for one epoch on 16 SST-2 sentences (``sections`` override tables of the recipe,
    as in conftest.write_tiny_recipe) and return its run folder."""
    tables = {name: dict(values) for name, values in QUICK.items()}
    for name, values in sections.items():
        tables.setdefault(name, {}).update(values)
    done = run_cli("train", "--recipe", str(write_tiny_recipe(folder, model_dir, **tables)))
    assert done.returncode == 0, done.stderr
    return folder / "runs" / "tiny"
