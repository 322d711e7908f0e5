"""Load a recipe file, apply ``--set key=value`` overrides, validate, and write it back out."""

from __future__ import annotations

import tomllib
from pathlib import Path

import tomli_w

from advcl.config.schema import Recipe
from advcl.config.validate import RecipeError, build, to_dict


def parse_override(text: str) -> tuple[list[str], object]:
    """``train.lr=2e-5`` -> (["train", "lr"], 2e-05). Values are TOML; bare words are strings."""
    key, sep, raw = text.partition("=")
    key = key.strip()
    if not sep or not key or any(not part for part in key.split(".")):
        raise RecipeError(f"override '{text}' must look like section.key=value")
    raw = raw.strip()
    try:
        value = tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        value = raw
    return key.split("."), value


def apply_overrides(data: dict, overrides: list[str]) -> dict:
    for text in overrides:
        path, value = parse_override(text)
        node = data
        for part in path[:-1]:
            child = node.setdefault(part, {})
            if isinstance(child, str):  # `objective = "vanilla"` then `--set objective.x=1`
                child = node[part] = {"name": child}
            if not isinstance(child, dict):
                raise RecipeError(f"override '{text}': '{part}' is not a section")
            node = child
        node[path[-1]] = value
    return data


def read_toml(path: Path) -> dict:
    if not path.is_file():
        raise RecipeError(f"recipe not found: {path}")
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise RecipeError(f"recipe {path} is not valid TOML: {exc}") from None


def load_recipe(path: str | Path | None, overrides: list[str] = (), data: dict | None = None) -> Recipe:
    """Read ``path`` (or take ``data``), apply overrides and validate into a :class:`Recipe`."""
    data = dict(data or {})
    if path is not None:
        path = Path(path)
        data = read_toml(path)
    data = apply_overrides(data, list(overrides))
    recipe = build(Recipe, data)
    if not recipe.run.name:
        recipe.run.name = path.stem if path is not None else "run"
    if recipe.model.pooling == "auto":
        from advcl.modeling.loading import default_pooling

        recipe.model.pooling = default_pooling(recipe.model.name)
    check_recipe(recipe)
    return recipe


def check_recipe(recipe: Recipe) -> None:
    """Constraints between fields that types alone do not express."""
    positive = {
        "train.batch_size": recipe.train.batch_size,
        "train.eval_batch_size": recipe.train.eval_batch_size,
        "train.grad_accum_steps": recipe.train.grad_accum_steps,
        "model.max_length": recipe.model.max_length,
        "train.log_every": recipe.train.log_every,
        "train.keep_checkpoints": recipe.train.keep_checkpoints,
    }
    for key, value in positive.items():
        if value < 1:
            raise RecipeError(f"'{key}' must be at least 1, got {value}")
    non_negative = {
        "train.epochs": recipe.train.epochs,
        "train.max_steps": recipe.train.max_steps,
        "train.global_batch_size": recipe.train.global_batch_size,
        "train.eval_every": recipe.train.eval_every,
        "train.save_every": recipe.train.save_every,
        "data.max_train_examples": recipe.data.max_train_examples,
        "data.max_eval_examples": recipe.data.max_eval_examples,
        "train.lr": recipe.train.lr,
        "train.weight_decay": recipe.train.weight_decay,
        "train.max_grad_norm": recipe.train.max_grad_norm,
    }
    for key, value in non_negative.items():
        if value < 0:
            raise RecipeError(f"'{key}' must not be negative, got {value}")
    if not 0 <= recipe.train.warmup_ratio <= 1:
        raise RecipeError(f"'train.warmup_ratio' must be between 0 and 1, got {recipe.train.warmup_ratio}")
    if recipe.train.epochs == 0 and recipe.train.max_steps == 0:
        raise RecipeError("set 'train.epochs' or 'train.max_steps' above 0")
    if not recipe.data.train:
        raise RecipeError("missing required recipe key 'data.train'")


def recipe_to_toml(recipe: Recipe) -> str:
    return tomli_w.dumps(to_dict(recipe))
