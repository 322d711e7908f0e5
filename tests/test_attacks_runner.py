"""Running attacks in-process on a tiny model: shards, resume after an interruption, TextAttack's summary, and the
checks that refuse bad input (unknown attack, missing resource, attack settings that differ from a folder's)."""

import pytest
from attack_helpers import InterruptAfter, without_time

from advcl.attacks import classification, resources, runner, session
from advcl.errors import BadInput, Interrupted


def deepwordbug(model_dir, folder, shard=runner.Shard(), num_examples=6, seed=3, query_budget=0):
    return session.prepare(session.AttackRequest("deepwordbug", str(model_dir), "sst2:validation",
                                                 num_examples=num_examples, seed=seed, query_budget=query_budget,
                                                 model_batch_size=4, max_length=48, output=folder, shard=shard))


def test_shards_partition_the_sample():
    for count in (1, 3, 8):
        parts = [runner.Shard(k, count).positions(20) for k in range(1, count + 1)]
        assert sorted(p for part in parts for p in part) == list(range(20))


@pytest.mark.parametrize("spec", ["0/3", "4/3", "a/b", "3", "2/"])
def test_bad_shard_spec(spec):
    with pytest.raises(BadInput, match="--shard must be K/N"):
        runner.Shard.parse(spec)


def test_unknown_attack_suggests_the_closest():
    with pytest.raises(BadInput, match="unknown attack 'textfoler' \\(did you mean 'textfooler'"):
        session.component_for("textfoler", "")


def test_missing_resource_names_it_and_how_to_build(tmp_path, monkeypatch, wide_bert_dir):
    monkeypatch.setenv(resources.RESOURCES_ENV, str(tmp_path))
    missing = "stopwords, counter-fitted-vectors, pos-tagger, universal-tagset; run `advcl resources build`"
    with pytest.raises(BadInput, match=f"textfooler needs resources missing from .*: {missing}"):
        session.prepare(session.AttackRequest("textfooler", str(wide_bert_dir), "sst2:validation", num_examples=2,
                                              seed=0, query_budget=0, model_batch_size=4, max_length=48,
                                              output=tmp_path / "out"))


def test_reports_name_the_stand_ins():
    from advcl.attacks.recipes import BAE, PWWS, TextFooler, describe

    assert describe(TextFooler()) == "textfooler (offline: counter-fitted GloVe-50d, MiniLM sentence encoder)"
    assert describe(PWWS()) == "pwws"
    assert describe(PWWS(), "AdvSTS") == "pwws on AdvSTS"
    assert describe(BAE(BAE.Config(mlm="my/mlm"))) == "bae (offline: masked LM my/mlm, MiniLM sentence encoder)"


def test_masked_lm_attacks_ask_for_one(attack_resources):
    from advcl.attacks.recipes import BAE

    with pytest.raises(BadInput, match="pass --mlm PATH"):
        BAE().build(None)
    with pytest.raises(BadInput, match="--mlm is for attacks that take a masked language model"):
        session.component_for("pwws", "some/mlm")


def test_masked_lm_attacks_take_an_mlm_run_folder(attack_resources, tmp_path):
    from sentence_helpers import mlm_run_folder
    from transformers import BertForMaskedLM

    from advcl.attacks.recipes import BAE

    run, _, _ = mlm_run_folder(tmp_path)
    swap = BAE(BAE.Config(mlm=str(run.path))).replacements()["WordSwapMaskedLM"]
    masked_lm, tokenizer = swap.keywords["masked_language_model"], swap.keywords["tokenizer"]
    assert isinstance(masked_lm, BertForMaskedLM) and tokenizer.mask_token_id == 103


def test_summary_is_textattacks(attack_resources, wide_bert_dir, tmp_path):
    """advcl's summary, from result rows, equals TextAttack's metrics on the AttackResult objects."""
    from textattack.metrics import AttackQueries, AttackSuccessRate, WordsPerturbed
    from textattack.shared.utils import set_seed

    job = deepwordbug(wide_bert_dir, tmp_path / "a", num_examples=12, query_budget=12)  # some run out of queries
    results, rows = [], []
    for position in range(len(job.dataset)):
        set_seed(runner.example_seed(job.settings.seed, position))
        result = job.attack.attack(classification.example_input(job.dataset, position), job.dataset.labels[position])
        results.append(result)
        rows.append(classification.result_row(position, job.dataset.labels[position], result, 0.0))
    ours = runner.summarise(rows, job.task)
    rates, words, queries = (m().calculate(results) for m in (AttackSuccessRate, WordsPerturbed, AttackQueries))
    assert ours["successful_attacks"] == rates["successful_attacks"] > 0
    assert ours["failed_attacks"] == rates["failed_attacks"] > 0
    assert ours["skipped_attacks"] == rates["skipped_attacks"] > 0
    assert ours["original_accuracy"] == rates["original_accuracy"]
    assert ours["accuracy_under_attack"] == rates["attack_accuracy_perc"]
    assert ours["attack_success_rate"] == rates["attack_success_rate"]
    assert ours["avg_perturbed_word_percent"] == words["avg_word_perturbed_perc"]
    assert ours["avg_words_per_input"] == words["avg_word_perturbed"]
    assert ours["avg_queries"] == queries["avg_num_queries"]


def test_interrupted_attack_resumes_without_repeating_and_shards_fill_one_folder(attack_resources, wide_bert_dir,
                                                                                  tmp_path):
    whole = deepwordbug(wide_bert_dir, tmp_path / "whole")
    expected = without_time(session.execute(whole))
    assert [r["index"] for r in expected] == list(range(6))
    assert {"successful", "skipped"} <= {r["status"] for r in expected}
    fields = {"original_text", "perturbed_text", "label", "original_output", "perturbed_output", "queries"}
    assert fields <= set(expected[0])

    # Ctrl-C after 3 examples, and a 4th line cut short by a kill
    job = deepwordbug(wide_bert_dir, tmp_path / "resumed")
    job.attack = InterruptAfter(job.attack, 3)
    with pytest.raises(Interrupted, match="after 3 of 6 examples.*run the same command again") as stopped:
        session.execute(job)
    assert stopped.value.exit_code == 130
    results = tmp_path / "resumed" / "results.jsonl"
    with results.open("a") as handle:
        handle.write('{"index": 3, "status": "succ')
    job = deepwordbug(wide_bert_dir, tmp_path / "resumed")
    assert sorted(job.done) == [0, 1, 2]
    job.attack = InterruptAfter(job.attack, 99)
    assert without_time(session.execute(job)) == expected
    assert len(job.attack.attacked) == 3  # only the unfinished examples
    assert len(results.read_text().splitlines()) == 6

    # two shards, as separate jobs on one folder, then the whole sample finds nothing left to attack
    for k in (1, 2):
        assert without_time(session.execute(deepwordbug(wide_bert_dir, tmp_path / "sharded", runner.Shard(k, 2)))) \
            == expected[k - 1 :: 2]
    job = deepwordbug(wide_bert_dir, tmp_path / "sharded")
    job.attack = InterruptAfter(job.attack, 0)
    assert without_time(session.execute(job)) == expected == without_time(session.sample_rows(job))


def test_a_folder_resumes_only_the_same_attack(attack_resources, wide_bert_dir, tmp_path):
    session.execute(deepwordbug(wide_bert_dir, tmp_path / "out", num_examples=2))
    with pytest.raises(BadInput, match=r"holds results of another attack \(num_examples 2 ≠ 3, seed 3 ≠ 4\)"):
        deepwordbug(wide_bert_dir, tmp_path / "out", num_examples=3, seed=4)
