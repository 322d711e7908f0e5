"""Issue 16: property-based mutations of the shipped recipes. An invalid recipe (an unknown key, a value of the
wrong type, NaN or ±inf, an out-of-range value, a bad name) is always a one-line RecipeError (exit 2) naming the
key, never a traceback and never accepted; a dropped key is accepted or refused the same way, never a traceback.
Validation runs in this process (what `advcl train --dry-run` does), so each example takes milliseconds."""

from __future__ import annotations

import copy
import math
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from advcl.config.recipe import load_recipe, read_toml
from advcl.config.validate import RecipeError



def _valid(path: Path) -> bool:
    """The recipes that validate with the built-ins alone (two use the example plugin packages)."""
    try:
        load_recipe(path)
    except RecipeError:
        return False
    return True


RECIPES = [p for p in sorted((Path(__file__).resolve().parents[1] / "recipes").glob("*.toml")) if _valid(p)]
SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# (dotted key, a value outside its range): checked in check_recipe, a component Config, or the name rules
OUT_OF_RANGE = [
    ("train.batch_size", 0), ("train.batch_size", -3), ("train.lr", -1e-5), ("train.lr", 5.0),
    ("train.warmup_ratio", 1.5), ("train.max_grad_norm", -1.0), ("train.weight_decay", -0.1),
    ("train.epochs", -1), ("train.epochs", 2**63 + 1), ("train.keep_checkpoints", 0), ("train.log_every", 0),
    ("model.max_length", 0), ("model.max_length", 100_000), ("data.max_train_examples", -1),
    ("run.name", ".."), ("run.name", "."), ("run.name", "a/b"), ("run.name", "/abs"), ("run.name", "x\0y"),
    ("model.name", ""), ("model.name", "   "), ("data.train", ""), ("data.labels", ["pos", "pos"]),
    ("data.labels", ["", "neg"]), ("run.device", "tpu"), ("objective.name", "no_such_objective"),
]


def leaves(table: dict, prefix: str = "") -> list[tuple[str, object]]:
    """Every (dotted key, value) of a recipe, tables included."""
    found = []
    for key, value in table.items():
        dotted = f"{prefix}{key}"
        found.append((dotted, value))
        if isinstance(value, dict):
            found += leaves(value, dotted + ".")
    return found


def set_key(data: dict, dotted: str, value) -> None:
    *parents, last = dotted.split(".")
    node = data
    for part in parents:
        child = node.setdefault(part, {})
        if isinstance(child, str):  # `objective = "vanilla"`
            child = node[part] = {"name": child}
        node = child
    node[last] = value


def drop_key(data: dict, dotted: str) -> None:
    *parents, last = dotted.split(".")
    node = data
    for part in parents:
        node = node[part]
    del node[last]


def wrong_type(value):
    """A value no field of ``value``'s type accepts (an int is a valid float, so a float gets a string)."""
    if isinstance(value, bool):
        return "yes"
    if isinstance(value, (int, float)):
        return "many"
    if isinstance(value, str):
        return [1, 2] if value else 3
    if isinstance(value, list):
        return {"not": "a list"}
    return 7  # a table


def names_key(message: str, dotted: str) -> bool:
    """The message quotes the key, or the table holding it (a component table refused as a whole)."""
    parts = dotted.split(".")
    return any(f"'{'.'.join(parts[:n])}" in message for n in range(len(parts), 0, -1))


def assert_refused(table: dict, dotted: str, value) -> None:
    """``table`` with ``dotted`` set to ``value`` is refused in one line naming the key (``table`` is not changed)."""
    data = copy.deepcopy(table)
    set_key(data, dotted, value)
    with pytest.raises(RecipeError) as refused:
        load_recipe(None, data=data)
    message = str(refused.value)
    assert "\n" not in message and refused.value.exit_code == 2
    assert names_key(message, dotted), (dotted, message)


recipes = st.sampled_from(RECIPES).map(lambda p: (p, read_toml(p)))


@SETTINGS
@given(recipes, st.data())
def test_an_unknown_key_is_refused_naming_it(recipe, data):
    path, table = recipe
    tables = [""] + [k + "." for k, v in leaves(table) if isinstance(v, dict)]
    where = data.draw(st.sampled_from(tables))
    name = data.draw(st.from_regex(r"[a-z][a-z_]{0,12}", fullmatch=True))
    if name in {k.split(".")[-1] for k, _ in leaves(table) if k.startswith(where)} or where == "" and name in (
            "run", "model", "data", "train", "objective"):
        return
    mutated = copy.deepcopy(table)
    set_key(mutated, where + name, 1)
    try:
        load_recipe(None, data=mutated)
    except RecipeError as exc:
        assert "\n" not in str(exc) and (f"'{where}{name}'" in str(exc) or names_key(str(exc), where + name))
    else:  # a component's option that the schema does have under another default: never an unknown key accepted
        pytest.fail(f"{path.name}: unknown key {where}{name} accepted")


@SETTINGS
@given(recipes, st.data())
def test_a_value_of_the_wrong_type_is_refused_naming_it(recipe, data):
    path, table = recipe
    dotted, value = data.draw(st.sampled_from(leaves(table)))
    assert_refused(table, dotted, wrong_type(value))


@SETTINGS
@given(recipes, st.data(), st.sampled_from([math.nan, math.inf, -math.inf]))
def test_nan_and_inf_are_refused_naming_the_key(recipe, data, bad):
    path, table = recipe
    numbers = [(k, v) for k, v in leaves(table) if isinstance(v, (int, float)) and not isinstance(v, bool)]
    dotted, _ = data.draw(st.sampled_from(numbers or [("train.lr", 0)]))
    assert_refused(table, dotted, bad)


@SETTINGS
@given(recipes, st.sampled_from(OUT_OF_RANGE))
def test_out_of_range_values_and_bad_names_are_refused(recipe, mutation):
    path, table = recipe
    dotted, value = mutation
    assert_refused(table, dotted, value)


@SETTINGS
@given(recipes, st.data())
def test_a_dropped_key_is_accepted_or_refused_in_one_line(recipe, data):
    path, table = recipe
    dotted, _ = data.draw(st.sampled_from(leaves(table)))
    mutated = copy.deepcopy(table)
    drop_key(mutated, dotted)
    try:
        load_recipe(None, data=mutated)
    except RecipeError as exc:
        assert "\n" not in str(exc) and names_key(str(exc), dotted), (dotted, str(exc))


@pytest.mark.parametrize("loss_key, value", [
    ("objective.loss.label_smoothing", 2.0), ("objective.loss.label_smoothing", -0.1),
])
def test_loss_options_have_ranges(loss_key, value):
    assert len(RECIPES) >= 15
    table = read_toml(next(p for p in RECIPES if p.name == "vanilla_sst2.toml"))
    assert_refused(table, loss_key, value)
