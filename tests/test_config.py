"""Recipes: validation into typed config, overrides, and one-line errors that name the key."""

import tomllib

import pytest

from advcl.config.recipe import apply_overrides, load_recipe, parse_override, recipe_to_toml
from advcl.config.validate import RecipeError

BASE = {"data": {"train": "sst2:train"}}


def test_resolved_recipe_with_overrides_has_every_default_and_the_overrides():
    recipe = load_recipe(None, ["train.lr=2e-5", "data.max_train_examples=2000", "model.pooling=mean"], data=BASE)
    resolved = tomllib.loads(recipe_to_toml(recipe))
    assert resolved["train"]["lr"] == 2e-5
    assert resolved["data"]["max_train_examples"] == 2000
    assert resolved["model"]["pooling"] == "mean"
    assert resolved["train"]["batch_size"] == 32  # a default, written out
    assert resolved["objective"] == {"name": "vanilla", "loss": {"name": "cross_entropy", "label_smoothing": 0.0}}
    assert resolved["run"]["name"] == "run"


def test_resolved_recipe_reloads_to_the_same_config(tmp_path):
    recipe = load_recipe(None, ["objective.loss.label_smoothing=0.1"], data=BASE)
    path = tmp_path / "config.toml"
    path.write_text(recipe_to_toml(recipe))
    assert load_recipe(path) == recipe


def test_recipe_name_defaults_to_file_stem(tmp_path):
    path = tmp_path / "my_recipe.toml"
    path.write_text('[data]\ntrain = "sst2:train"\n')
    assert load_recipe(path).run.name == "my_recipe"


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["train.lrr=1e-5"], "unknown recipe key 'train.lrr' (did you mean 'train.lr'?)"),
        (["trian.lr=1e-5"], "unknown recipe key 'trian' (did you mean 'train'?)"),
        (["train.epochs=abc"], "'train.epochs' must be an integer, got 'abc'"),
        (["train.epochs=1.5"], "'train.epochs' must be an integer, got 1.5"),
        (["run.deterministic=1"], "'run.deterministic' must be true or false, got 1"),
        (["model.pooling=max"], "'model.pooling' must be one of 'auto', 'cls', 'mean', got 'max'"),
        (["objective.name=vanila"], "unknown objective 'vanila' (did you mean 'vanilla'?"),
        (["objective.loss=cross_entropi"], "unknown loss 'cross_entropi' (did you mean 'cross_entropy'?"),
        (["objective.loss.smoothing=0.1"], "unknown recipe key 'objective.loss.smoothing'"),
        (["train.batch_size=0"], "'train.batch_size' must be at least 1, got 0"),
        (["train.lr"], "override 'train.lr' must look like section.key=value"),
    ],
)
def test_bad_recipes_name_the_key(overrides, message):
    with pytest.raises(RecipeError) as info:
        load_recipe(None, overrides, data=BASE)
    assert message in str(info.value)
    assert "\n" not in str(info.value)


def test_missing_required_field():
    with pytest.raises(RecipeError, match="missing required recipe key 'data.train'"):
        load_recipe(None, [], data={})


def test_int_is_accepted_where_a_float_is_expected():
    assert load_recipe(None, ["train.lr=1"], data=BASE).train.lr == 1.0


def test_override_values_parse_as_toml_and_bare_words_as_strings():
    assert parse_override("a.b=2e-5") == (["a", "b"], 2e-5)
    assert parse_override("a.b=true") == (["a", "b"], True)
    assert parse_override("a.b=[1, 2]") == (["a", "b"], [1, 2])
    assert parse_override("data.train=sst2:train") == (["data", "train"], "sst2:train")
    assert apply_overrides({"objective": "vanilla"}, ["objective.loss=x"]) == {"objective": {"name": "vanilla", "loss": "x"}}


def test_invalid_toml_is_one_line(tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text("[train\nlr = 1")
    with pytest.raises(RecipeError, match="not valid TOML"):
        load_recipe(path)


def test_nonexistent_recipe(tmp_path):
    with pytest.raises(RecipeError, match="recipe not found"):
        load_recipe(tmp_path / "nope.toml")


def test_every_shipped_recipe_validates():
    from conftest import ROOT

    recipes = sorted((ROOT / "recipes").glob("*.toml"))
    assert recipes
    for path in recipes:
        try:
            load_recipe(path)
        except RecipeError as exc:
            if "unknown" in str(exc) and "plugin" in path.read_text():  # recipes for example plugins
                continue
            raise


def test_select_metric_must_fit_the_validation_task(tmp_path):
    from advcl.engine.session import start_training

    recipe = load_recipe(None, ["data.validation=stsb:validation", "run.output_dir=" + str(tmp_path)], data=BASE)
    with pytest.raises(RecipeError, match="stsb:validation is an STS split: use 'spearman'"):
        start_training(recipe)
    assert not (tmp_path / "run").exists()  # nothing written for a recipe that cannot run
