"""Shared fixtures: offline settings, the shipped data folder, and tiny random models built in memory."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = (ROOT / ".." / "shared" / "data").resolve()

os.environ["ADVCL_DATA_DIR"] = str(SHARED_DATA)
os.environ["ADVCL_DISABLE_PLUGIN_AUTOLOAD"] = "1"  # tests see the built-ins only
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TOKENIZERS_PARALLELISM"] = "false"
# Tiny models run fastest on one thread, and 2 threads on a busy 2-core machine oversubscribe it.
# Tests that use the real encoder pass OMP_NUM_THREADS themselves.
os.environ.setdefault("OMP_NUM_THREADS", "1")

from tiny_models import tiny_bert, tiny_tokenizer  # noqa: E402  (after the environment is set)


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory) -> Path:
    """A Hugging Face folder with a tiny random BERT (a 2-label head) and the shipped tokenizer."""
    folder = tmp_path_factory.mktemp("tiny-bert")
    tiny_bert().save_pretrained(folder)
    tiny_tokenizer().save_pretrained(folder)
    return folder


def run_cli(*args: str, cwd: Path | None = None, timeout: float = 1800, env: dict | None = None):
    """Run ``python -m advcl ARGS`` in a fresh process; returns the CompletedProcess."""
    return subprocess.run(
        [sys.executable, "-m", "advcl", *args],
        cwd=cwd, capture_output=True, text=True, timeout=timeout, env={**os.environ, **(env or {})},
    )


def train_until_interrupted(recipe: Path, run_dir: Path, rows: int = 5) -> tuple[int, str]:
    """``advcl train --recipe`` stopped by Ctrl-C (SIGINT) once its metrics.jsonl has ``rows`` lines: (exit status,
    stderr)."""
    import signal
    import time

    proc = subprocess.Popen([sys.executable, "-m", "advcl", "train", "--recipe", str(recipe)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    metrics = run_dir / "metrics.jsonl"
    while proc.poll() is None and not (metrics.is_file() and metrics.read_text().count("\n") >= rows):
        time.sleep(0.005)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    return proc.returncode, err


def write_two_method_grid(folder: Path, recipe: Path, evaluations: str) -> Path:
    """grid.toml: methods ``base`` (the baseline) and ``adv`` of ``recipe``, seeds 0-2, runs in folder/out, and the
    ``evaluations`` ([[evaluate]] tables) given."""
    path = folder / "grid.toml"
    path.write_text(f"""output_dir = "{folder}/out"
seeds = [0, 1, 2]
baseline = "base"
[[method]]
name = "base"
recipe = "{recipe}"
[[method]]
name = "adv"
recipe = "{recipe}"
{evaluations}""")
    return path


def assert_one_line_error(done, *fragments):
    """A bad-input exit: status 2, one line on stderr starting "error: ", no traceback, every fragment in it."""
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), done.stderr
    assert "Traceback" not in done.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


def write_tiny_recipe(folder: Path, model_dir: Path, **sections) -> Path:
    """A recipe that trains the tiny model on 96 SST-2 sentences; ``sections`` override tables."""
    import tomli_w

    recipe = {
        "run": {"name": "tiny", "output_dir": str(folder / "runs"), "seed": 7},
        "model": {"name": str(model_dir), "max_length": 32},
        "data": {"train": "sst2:train", "validation": "sst2:validation",
                 "max_train_examples": 96, "max_eval_examples": 64},
        "train": {"epochs": 2, "batch_size": 8, "lr": 1e-3, "eval_every": 4, "save_every": 3, "log_every": 2},
        "objective": {"name": "vanilla"},
    }
    for table, values in sections.items():
        recipe.setdefault(table, {}).update(values)
    path = folder / "tiny.toml"
    path.write_text(tomli_w.dumps(recipe))
    return path


@pytest.fixture(scope="module")
def attack_resources(tmp_path_factory):
    """The resources deepwordbug needs (the NLTK stopwords), activated in this process: TextAttack imports with
    them. The previous ADVCL_RESOURCES comes back after the module."""
    from advcl.attacks import resources
    from advcl.data.catalogue import data_dir

    folder = tmp_path_factory.getbasetemp() / "attack-resources"
    resources.build(folder, data_dir(), only=("stopwords",), log=lambda m: None)
    saved = os.environ.get(resources.RESOURCES_ENV)
    os.environ[resources.RESOURCES_ENV] = str(folder)
    resources.activate(folder)
    yield folder
    if saved is None:
        os.environ.pop(resources.RESOURCES_ENV)
    else:
        os.environ[resources.RESOURCES_ENV] = saved


@pytest.fixture(scope="module")
def wide_bert_dir(tmp_path_factory):
    """A tiny random BERT classifier folder initialised wide (std 0.5), so that its predictions and pair cosines
    vary and typos move them: the victim of the in-process attack tests."""
    import torch
    from transformers import BertForSequenceClassification

    from tiny_models import tiny_bert_config

    folder = tmp_path_factory.mktemp("wide-bert")
    torch.manual_seed(0)
    config = tiny_bert_config(vocab_size=30522, num_labels=2, max_position_embeddings=128, initializer_range=0.5)
    BertForSequenceClassification(config).save_pretrained(folder)
    tiny_tokenizer().save_pretrained(folder)
    return folder
