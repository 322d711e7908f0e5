"""Load a recipe file, apply ``--set key=value`` overrides, validate, and write it back out."""

from __future__ import annotations

import tomllib
from pathlib import Path

import tomli_w

from advcl.config.ranges import at_least, at_most, fraction, not_negative
from advcl.config.schema import Recipe
from advcl.config.validate import RecipeError, build, to_dict
from advcl.data.adversarial_rows import check_statuses


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

        recipe.model.pooling = _run_folder_pooling(recipe.model.name) or default_pooling(recipe.model.name)
    check_recipe(recipe)
    return recipe


def _run_folder_pooling(name: str) -> str | None:
    """The pooling an advcl run folder (config.toml beside model/, advcl.runs) was trained with; None otherwise."""
    folder = Path(name).expanduser()
    if not ((folder / "config.toml").is_file() and (folder / "model").is_dir()):
        return None
    return load_recipe(folder / "config.toml").model.pooling


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
        at_least(key, value, 1)
    non_negative = {
        "train.epochs": recipe.train.epochs,
        "train.max_steps": recipe.train.max_steps,
        "train.global_batch_size": recipe.train.global_batch_size,
        "train.eval_every": recipe.train.eval_every,
        "train.save_every": recipe.train.save_every,
        "data.max_train_examples": recipe.data.max_train_examples,
        "data.examples_per_class": recipe.data.examples_per_class,
        "data.max_eval_examples": recipe.data.max_eval_examples,
        "train.lr": recipe.train.lr,
        "train.weight_decay": recipe.train.weight_decay,
        "train.max_grad_norm": recipe.train.max_grad_norm,
    }
    for key, value in non_negative.items():
        not_negative(key, value)
    at_most("train.lr", recipe.train.lr, 1)  # AdamW steps are about lr in size: above 1 they overflow float32 weights
    fraction("train.warmup_ratio", recipe.train.warmup_ratio)
    if recipe.train.epochs == 0 and recipe.train.max_steps == 0:
        raise RecipeError("set 'train.epochs' or 'train.max_steps' above 0")
    at_most("model.max_length", recipe.model.max_length, MAX_LENGTH_LIMIT)
    if not recipe.data.train:
        raise RecipeError("missing required recipe key 'data.train'")
    if not recipe.model.name.strip():
        raise RecipeError("'model.name' must name a model folder or hub id, got an empty string")
    check_run_name(recipe.run.name)
    if recipe.data.examples_per_class and recipe.data.max_train_examples:
        raise RecipeError("'data.examples_per_class' and 'data.max_train_examples' both draw the training subset: "
                          "set one of them to 0")
    check_statuses(recipe.data.adv_statuses)
    check_label_names(recipe.data.labels)


# No encoder advcl trains reads more positions than this; the model's own limit is checked when it is loaded.
MAX_LENGTH_LIMIT = 32768


def model_positions(model_config) -> int | None:
    """How many tokens the model reads (RoBERTa-style models reserve ``pad_token_id + 1`` of their position
    embeddings); None where the configuration does not say."""
    positions = getattr(model_config, "max_position_embeddings", None)
    if not isinstance(positions, int):
        return None
    if getattr(model_config, "model_type", "") in OFFSET_POSITION_MODELS:
        positions -= (getattr(model_config, "pad_token_id", None) or 0) + 1
    return positions


def check_model_positions(model, model_config) -> None:
    """``model.max_length`` within the positions the loaded model has; beyond, position embeddings would be indexed
    out of range."""
    positions = model_positions(model_config)
    if positions is not None and model.max_length > positions:
        raise RecipeError(f"'model.max_length' = {model.max_length} is above the {positions} positions "
                          f"model {model.name} has")


# Model types whose position ids start after the padding index (transformers' create_position_ids_from_input_ids).
OFFSET_POSITION_MODELS = ("roberta", "xlm-roberta", "camembert", "longformer", "mpnet", "data2vec-text")


def check_run_name(name: str) -> None:
    """``run.name`` is one plain folder name inside ``run.output_dir``: `--overwrite` may replace that folder and
    nothing else, so a name that climbs out of it or names it (``..``, ``.``, ``a/b``, ``/abs``) is refused.
    A leading dot is kept for the temporary folders a run is built and replaced through (:mod:`advcl.runs`)."""
    if not name.strip() or name.startswith(".") or any(c in name for c in "/\\\0"):
        raise RecipeError(f"'run.name' must be a plain folder name (no path separators, not '.' or '..', "
                          f"not starting with '.'), got {name!r}")


def check_label_names(labels: list[str]) -> None:
    """``data.labels``: distinct, non-empty names (a repeated name would give two classes one meaning)."""
    for i, label in enumerate(labels):
        if not label.strip():
            raise RecipeError(f"'data.labels[{i}]' is empty: every label needs a name")
        if label in labels[:i]:
            raise RecipeError(f"'data.labels[{i}]' repeats the label {label!r}")


def check_readout(recipe: Recipe) -> None:
    """An objective whose contrastive term reads the pooled sentence vector must classify from that vector too
    (the papers regularise the representation the classifier uses): with ``model.pooling = "mean"`` and
    ``model.classifier_input = "head"`` cross-entropy would go through the pooler on [CLS] while the contrast
    pulls on the mean. ``model.mixed_readout = true`` allows it on purpose. Checked when a run starts (and by
    ``advcl train --dry-run``), not when a stored run folder's config is read: runs trained before the check
    still load, resume and export."""
    from advcl.plugins import registry

    m = recipe.model
    objective = registry().get("objective", recipe.objective.name).cls
    if (getattr(objective, "contrasts_sentence", False) and objective.needs_labels and m.pooling == "mean"
            and m.classifier_input == "head" and not m.mixed_readout):
        raise RecipeError(
            f"objective '{recipe.objective.name}' contrasts the mean-pooled sentence vector but its classifier reads "
            "[CLS] through the architecture's head: set model.classifier_input = \"sentence\" (both read the mean), "
            "model.pooling = \"cls\", or model.mixed_readout = true to keep the two apart on purpose"
        )


def recipe_to_toml(recipe: Recipe) -> str:
    return tomli_w.dumps(to_dict(recipe))
