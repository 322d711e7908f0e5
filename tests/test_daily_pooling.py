"""Issue 17, item 3: ``model.pooling`` defaults to what the model folder's own sentence-transformers config
declares (1_Pooling/config.json), else [CLS]; the resolved recipe (and so the run folder) holds the choice."""

import json
import shutil
import tomllib

import pytest

from advcl.config.recipe import load_recipe, recipe_to_toml
from advcl.modeling.loading import default_pooling, resolve_model_path
from conftest import run_cli


def with_pooling_config(folder, tmp_path, **modes):
    copy = tmp_path / "st-model"
    shutil.copytree(folder, copy)
    (copy / "1_Pooling").mkdir()
    (copy / "1_Pooling" / "config.json").write_text(json.dumps({"word_embedding_dimension": 32, **modes}))
    return copy


def recipe_for(model, *overrides):
    return load_recipe(None, list(overrides), data={"data": {"train": "sst2:train"}, "model": {"name": str(model)}})


def test_a_plain_model_folder_pools_cls(tiny_model_dir):
    assert recipe_for(tiny_model_dir).model.pooling == "cls"


@pytest.mark.parametrize(("modes", "expected"), [
    ({"pooling_mode_mean_tokens": True, "pooling_mode_cls_token": False}, "mean"),
    ({"pooling_mode_mean_tokens": False, "pooling_mode_cls_token": True}, "cls"),
    ({"pooling_mode_max_tokens": True}, "cls"),  # a pooling advcl has not: the fallback
])
def test_the_model_folder_pooling_config_is_the_default(tiny_model_dir, tmp_path, modes, expected):
    folder = with_pooling_config(tiny_model_dir, tmp_path, **modes)
    assert recipe_for(folder).model.pooling == expected
    assert tomllib.loads(recipe_to_toml(recipe_for(folder)))["model"]["pooling"] == expected  # resolved, not "auto"


def test_an_explicit_pooling_wins(tiny_model_dir, tmp_path):
    folder = with_pooling_config(tiny_model_dir, tmp_path, pooling_mode_mean_tokens=True)
    assert recipe_for(folder, "model.pooling=cls").model.pooling == "cls"
    assert recipe_for(tiny_model_dir, "model.pooling=mean").model.pooling == "mean"


def test_the_shipped_minilm_package_declares_mean_pooling():
    folder = resolve_model_path("all-MiniLM-L6-v2")
    declared = json.loads((__import__("pathlib").Path(folder) / "1_Pooling" / "config.json").read_text())
    assert declared["pooling_mode_mean_tokens"] is True
    assert default_pooling("all-MiniLM-L6-v2") == "mean"
    assert recipe_for("all-MiniLM-L6-v2").model.pooling == "mean"
    assert default_pooling("no-such-org/no-such-model") == "cls"  # a hub id that is not here: [CLS]


def test_dry_run_shows_the_resolved_pooling(tiny_model_dir, tmp_path):
    folder = with_pooling_config(tiny_model_dir, tmp_path, pooling_mode_mean_tokens=True)
    recipe = tmp_path / "r.toml"
    recipe.write_text(f'[model]\nname = "{folder}"\n[data]\ntrain = "sst2:train"\n')
    done = run_cli("train", "--recipe", str(recipe), "--dry-run")
    assert done.returncode == 0, done.stderr
    assert tomllib.loads(done.stdout)["model"]["pooling"] == "mean"


def test_a_model_folder_truncates_at_its_declared_length(tiny_model_dir, tmp_path):
    """A sentence-transformers folder encodes at its sentence_bert_config.json ``max_seq_length`` (256 for
    all-MiniLM-L6-v2), as ``SentenceTransformer.encode`` does; without one, at the tokenizer's limit."""
    from advcl.runs import load_model

    plain = load_model(str(tiny_model_dir))
    folder = with_pooling_config(tiny_model_dir, tmp_path, pooling_mode_mean_tokens=True)
    (folder / "sentence_bert_config.json").write_text(json.dumps({"max_seq_length": 7, "do_lower_case": False}))
    declared = load_model(str(folder))
    assert declared.max_length == 7 and declared.pooling == "mean"
    assert plain.max_length == min(plain.tokenizer.model_max_length, 512)
    (folder / "sentence_bert_config.json").write_text(json.dumps({"max_seq_length": 100_000}))
    assert load_model(str(folder)).max_length == plain.max_length  # never past the tokenizer's limit
    assert load_model("all-MiniLM-L6-v2").max_length == 256
