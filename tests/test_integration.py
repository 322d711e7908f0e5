"""The shipped all-MiniLM-L6-v2 encoder on real SST-2: a short run learns, and its export matches."""

import json

import pytest
import torch

from conftest import run_cli

pytestmark = pytest.mark.integration
TWO_THREADS = {"OMP_NUM_THREADS": "2"}  # the real encoder uses both cores


def test_minilm_fine_tunes_on_sst2_and_exports(tmp_path):
    import tomli_w

    recipe = tmp_path / "mini.toml"
    recipe.write_text(
        tomli_w.dumps(
            {
                "run": {"name": "mini", "output_dir": str(tmp_path / "runs")},
                "model": {"name": "all-MiniLM-L6-v2", "max_length": 48},
                "data": {"train": "sst2:train", "validation": "sst2:validation",
                         "max_train_examples": 1920, "max_eval_examples": 200},
                "train": {"epochs": 1, "batch_size": 32, "lr": 8e-5, "warmup_ratio": 0.05},
                "objective": {"name": "vanilla"},
            }
        )
    )
    done = run_cli("train", "--recipe", str(recipe), "--json", env=TWO_THREADS)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    # 60 steps move the new head well above chance (0.5); the quickstart's 188 steps reach ~0.83.
    assert report["best_metric"] > 0.7, report
    run_dir = tmp_path / "runs" / "mini"

    evaluated = json.loads(run_cli("eval", "--model", str(run_dir), "--data", "sst2:validation", "--json", env=TWO_THREADS).stdout)
    assert evaluated["examples"] == 872 and evaluated["accuracy"] > 0.7

    out = tmp_path / "export"
    assert run_cli("export", "--model", str(run_dir), "--output", str(out)).returncode == 0
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from advcl.runs import load_model

    plain = AutoModelForSequenceClassification.from_pretrained(out).eval()
    tokenizer = AutoTokenizer.from_pretrained(out)
    batch = tokenizer(["an utterly charming film", "a tedious mess"], return_tensors="pt", padding=True)
    with torch.no_grad():
        ours = load_model(str(run_dir)).model.eval()(**batch).logits
        assert torch.allclose(plain(**batch).logits, ours, atol=1e-5)
