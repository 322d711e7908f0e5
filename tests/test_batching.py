"""Length-grouped training batches (advcl/data/batching.py): a permutation of the data every epoch, a pure
function of (seed, epoch), less padding on a skewed-length dataset, and the trainer's default per objective."""

import random

import pytest

from advcl.data.batching import GROUP_BATCHES, EncodedDataset, epoch_batches, group_by_length, groups_by_length


def skewed_lengths(n: int, seed: int = 0) -> list[int]:
    """Mostly short rows with a long tail, like SST-2 sentences (mean ~13 tokens, a few near the cap)."""
    rng = random.Random(seed)
    return [min(64, 4 + int(rng.expovariate(1 / 10))) for _ in range(n)]


def padded_tokens(batches: list[list[int]], lengths: list[int]) -> int:
    """Tokens a batch costs when it is padded to its longest row."""
    return sum(len(b) * max(lengths[i] for i in b) for b in batches)


# batch_size is the global batch: a multiple of the processes, as in the trainer
@pytest.mark.parametrize(("n", "batch_size", "processes"), [(1000, 32, 1), (1001, 32, 2), (97, 24, 3), (5, 8, 1)])
def test_every_epoch_is_a_permutation_cut_into_as_many_batches(n, batch_size, processes):
    lengths = skewed_lengths(n)
    for epoch in range(3):
        grouped = epoch_batches(n, batch_size, seed=11, epoch=epoch, multiple_of=processes, lengths=lengths)
        plain = epoch_batches(n, batch_size, seed=11, epoch=epoch, multiple_of=processes)
        # the same rows, wrap-around included, in the same number of batches of the same sizes
        assert sorted(i for b in grouped for i in b) == sorted(i for b in plain for i in b)
        assert sorted(len(b) for b in grouped) == sorted(len(b) for b in plain)
        assert set(i for b in grouped for i in b) == set(range(n))
        assert all(len(b) % processes == 0 for b in grouped)  # every batch splits evenly over the processes
        assert sum(len(b) < batch_size for b in grouped) <= 1


def test_same_seed_and_epoch_give_the_same_batches_and_others_differ():
    lengths = skewed_lengths(500)
    a = epoch_batches(500, 16, seed=3, epoch=2, lengths=lengths)
    assert a == epoch_batches(500, 16, seed=3, epoch=2, lengths=list(lengths))
    assert a != epoch_batches(500, 16, seed=3, epoch=1, lengths=lengths)
    assert a != epoch_batches(500, 16, seed=4, epoch=2, lengths=lengths)


def test_the_ungrouped_order_is_unchanged():
    import torch

    order = torch.randperm(10, generator=torch.Generator().manual_seed(1 * 100_003 + 0)).tolist()
    assert epoch_batches(10, 3, seed=1, epoch=0) == [order[0:3], order[3:6], order[6:9], order[9:]]


def test_padding_is_reduced_on_a_skewed_length_dataset():
    n, batch_size = 2000, 32
    lengths = skewed_lengths(n, seed=5)
    real = sum(lengths)
    plain = padded_tokens(epoch_batches(n, batch_size, seed=0, epoch=0), lengths)
    grouped = padded_tokens(epoch_batches(n, batch_size, seed=0, epoch=0, lengths=lengths), lengths)
    floor = padded_tokens([sorted(range(n), key=lambda i: lengths[i])[i : i + batch_size]
                           for i in range(0, n, batch_size)], lengths)  # one global sort: the least padding
    assert plain > 2.5 * real  # random batches: mostly padding
    assert grouped < 1.1 * floor  # within mega-batches of 50 batches, close to sorting everything
    assert grouped < 0.5 * plain


def test_batches_hold_similar_lengths_within_a_mega_batch_and_the_longest_comes_first():
    n, batch_size = 3 * GROUP_BATCHES * 4, 4
    lengths = skewed_lengths(n, seed=9)
    batches = epoch_batches(n, batch_size, seed=2, epoch=0, lengths=lengths)
    assert lengths[batches[0][0]] == max(lengths)
    # the batches are not in length order (they were shuffled) ...
    widths = [max(lengths[i] for i in b) for b in batches]
    assert widths != sorted(widths) and widths != sorted(widths, reverse=True)
    # ... and within each, rows are sorted longest first
    assert all([lengths[i] for i in b] == sorted((lengths[i] for i in b), reverse=True) for b in batches)


def test_group_by_length_keeps_shuffled_order_among_equal_lengths():
    import torch

    order = [5, 2, 7, 0, 3, 1, 6, 4]
    lengths = [1] * 8
    batches = group_by_length(order, lengths, 4, torch.Generator().manual_seed(0))
    assert sorted(map(tuple, batches)) == sorted([(5, 2, 7, 0), (3, 1, 6, 4)])


def test_lengths_take_the_longer_of_a_text_and_its_adversarial_twin():
    twin = EncodedDataset([[1, 2, 3, 4], [1], [1, 2]], None, None, 0)
    data = EncodedDataset([[1, 2], [1, 2, 3], [1, 2]], None, [0, 1, 0], 0, adversarial=twin)
    assert data.lengths() == [4, 3, 2]


@pytest.mark.parametrize(
    ("setting", "in_batch_negatives", "expected"),
    [("auto", False, True), ("auto", True, False), ("on", True, True), ("off", False, False)],
)
def test_the_setting_and_the_objective_family_decide(setting, in_batch_negatives, expected):
    assert groups_by_length(setting, in_batch_negatives) is expected


def test_objectives_with_in_batch_negatives_say_so():
    from advcl.plugins import registry

    objectives = registry().components["objective"]
    assert objectives["simcse"].cls.in_batch_negatives and objectives["uscal"].cls.in_batch_negatives
    assert objectives["scal"].cls.in_batch_negatives and objectives["cat"].cls.in_batch_negatives
    assert not objectives["vanilla"].cls.in_batch_negatives and not objectives["freelb"].cls.in_batch_negatives


@pytest.mark.parametrize(
    ("objective", "setting", "grouped"),
    [("vanilla", "auto", True), ("vanilla", "off", False), ("simcse", "auto", False), ("simcse", "on", True)],
)
def test_the_trainer_draws_its_batches_as_the_recipe_says(tmp_path, objective, setting, grouped):
    import torch
    from objective_helpers import dropout_free_classifier, presence_task

    from advcl.config.recipe import load_recipe
    from advcl.engine.trainer import Trainer
    from advcl.objectives.base import create
    from advcl.runs import RunFolder

    data = presence_task(40)
    recipe = load_recipe(None, data={
        "run": {"name": "t", "output_dir": str(tmp_path)},
        "data": {"train": "in-memory", "group_by_length": setting},
        "train": {"epochs": 2, "batch_size": 4, "log_every": 1000},
        "objective": {"name": objective},
    })
    model = dropout_free_classifier(seed=0)
    trainer = Trainer(recipe, RunFolder(tmp_path / "t"), model, create(recipe.objective, model=model, num_labels=2),
                      train_data=data, validate=None, device=torch.device("cpu"))
    lengths = [len(ids) for ids in data.input_ids]
    seed = trainer.recipe.run.seed
    for epoch in range(2):
        expected = epoch_batches(len(data), 4, seed, epoch, lengths=lengths if grouped else None)
        drawn = [trainer._micro_batches(epoch * trainer.steps_per_epoch + k)[0] for k in range(len(expected))]
        assert drawn == expected
