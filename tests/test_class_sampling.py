"""``data.examples_per_class``: a seeded stratified training subset (advcl/data/class_sampling.py).

A made-up dataset whose every text names its own class and row (``c2-r1``) lets each check read the expectation off
the rows themselves: classes of 7, 4 and 2 rows, so a draw of 3 per class is 3 + 3 + 2 = 8 rows with one short class.
"""

from __future__ import annotations

import json
from collections import Counter

import pytest

from advcl.config.recipe import load_recipe
from advcl.config.validate import RecipeError
from advcl.data.class_sampling import describe, sample_per_class
from advcl.data.dataset import TextDataset
from advcl.data.tasks import CLASSIFICATION, SIMILARITY, UNLABELED
from conftest import run_cli, write_tiny_recipe

SIZES = {"alpha": 7, "beta": 4, "gamma": 2}


def made_up() -> TextDataset:
    """The classes' rows interleaved (round robin), so that no class is one block of the source order."""
    rows = [(c, r) for r in range(max(SIZES.values())) for c, size in enumerate(SIZES.values()) if r < size]
    return TextDataset("made-up", CLASSIFICATION, [f"c{c}-r{r}" for c, r in rows], labels=[c for c, _ in rows],
                       label_names=list(SIZES))


def test_each_class_gives_n_rows_and_a_smaller_class_all_of_its_rows():
    subset, summary = sample_per_class(made_up(), 3, seed=5)
    assert Counter(subset.labels) == {0: 3, 1: 3, 2: 2}
    assert summary == {"examples_per_class": 3, "rows": 8, "classes": 3, "short_classes": {"gamma": 2}}
    assert describe(summary) == ("data.examples_per_class = 3: 8 rows of 3 classes; "
                                 "1 with fewer rows keep all of them: gamma (2)")


def test_a_class_with_no_row_at_all_is_named_with_zero():
    data = made_up()
    data.label_names = [*SIZES, "delta"]
    _, summary = sample_per_class(data, 4, seed=0)
    assert summary["short_classes"] == {"gamma": 2, "delta": 0} and summary["rows"] == 4 + 4 + 2


def test_the_subset_is_real_rows_with_their_own_labels_in_source_order():
    data = made_up()
    subset, _ = sample_per_class(data, 2, seed=11)
    positions = [data.texts.index(t) for t in subset.texts]
    assert positions == sorted(positions) and len(set(positions)) == 6
    for text, label in zip(subset.texts, subset.labels):
        assert text.startswith(f"c{label}-")
        assert data.labels[data.texts.index(text)] == label


def test_the_draw_depends_on_the_seed_only():
    data = made_up()
    assert sample_per_class(data, 2, seed=3)[0].texts == sample_per_class(made_up(), 2, seed=3)[0].texts
    draws = {tuple(sample_per_class(data, 2, seed=s)[0].texts) for s in range(4)}
    assert len(draws) > 1


def test_a_smaller_draw_is_part_of_a_larger_one_at_the_same_seed():
    """5 per class is half of the 10-per-class rows of its seed, not other rows (the permutation walked less far)."""
    data = made_up()
    for seed in (0, 9):
        assert set(sample_per_class(data, 2, seed)[0].texts) < set(sample_per_class(data, 4, seed)[0].texts)


def test_one_class_draws_the_rows_max_train_examples_draws():
    """With a single class the stratified draw and data.max_train_examples' draw are the same seeded subset."""
    data = TextDataset("one", CLASSIFICATION, [f"t{i}" for i in range(20)], labels=[0] * 20, label_names=["only"])
    for seed in (0, 1, 42):
        assert sample_per_class(data, 6, seed)[0].texts == data.sample(6, seed).texts


def test_zero_is_off():
    data = made_up()
    subset, summary = sample_per_class(data, 0, seed=1)
    assert subset is data and summary is None


@pytest.mark.parametrize("task, labels", [(UNLABELED, None), (SIMILARITY, [0.5, 4.0])])
def test_data_without_class_labels_is_a_recipe_error_naming_the_key(task, labels):
    data = TextDataset("sents", task, ["a b", "c d"], labels=labels)
    with pytest.raises(RecipeError, match=r"^'data\.examples_per_class' draws rows per class, but sents is"):
        sample_per_class(data, 1, seed=0)


BASE = {"data": {"train": "sst2:train"}, "model": {"pooling": "mean"}}


def test_the_recipe_refuses_both_subsets_and_a_negative_count():
    assert load_recipe(None, ["data.examples_per_class=10"], data=BASE).data.examples_per_class == 10
    with pytest.raises(RecipeError, match=r"'data\.examples_per_class' and 'data\.max_train_examples' both"):
        load_recipe(None, ["data.examples_per_class=10", "data.max_train_examples=100"], data=BASE)
    with pytest.raises(RecipeError, match=r"^'data\.examples_per_class' must not be negative, got -1$"):
        load_recipe(None, ["data.examples_per_class=-1"], data=BASE)


def test_a_run_trains_on_the_draw_and_its_report_names_the_short_class(tmp_path, tiny_model_dir):
    data = tmp_path / "intents.jsonl"
    rows = [{"text": f"{name} request number {i}", "label": name} for name, n in SIZES.items() for i in range(n)]
    data.write_text("".join(json.dumps(row) + "\n" for row in rows))
    recipe = write_tiny_recipe(tmp_path, tiny_model_dir, data={"train": str(data), "validation": "",
                                                               "max_train_examples": 0, "examples_per_class": 3},
                               train={"epochs": 1, "batch_size": 4})
    done = run_cli("train", "--recipe", str(recipe))
    assert done.returncode == 0, done.stderr
    assert "data.examples_per_class = 3: 8 rows of 3 classes; 1 with fewer rows keep all of them: gamma (2)" \
        in done.stderr
    report = json.loads((tmp_path / "runs" / "tiny" / "report.json").read_text())
    assert report["class_sampling"]["short_classes"] == {"gamma": 2}
    assert report["total_steps"] == 2  # 8 rows in batches of 4


def test_the_cli_refuses_unlabelled_data_in_one_line(tmp_path, tiny_model_dir):
    recipe = write_tiny_recipe(tmp_path, tiny_model_dir, data={"train": "sentences:train", "validation": "",
                                                               "max_train_examples": 0, "examples_per_class": 2},
                               objective={"name": "simcse"})
    done = run_cli("train", "--recipe", str(recipe))
    assert done.returncode == 2
    assert done.stderr.strip().count("\n") == 0 and "'data.examples_per_class'" in done.stderr
