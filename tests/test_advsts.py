"""AdvSTS (RobustSentEmbed §4.2): attacks that move an STS pair's predicted similarity away from its gold score, in
`advcl attack`, on a tiny random encoder and a tiny STS dataset folder whose gold scores are set around the
encoder's own predictions (some pairs within the margin, some off by it already)."""

import json
from collections import OrderedDict

import pytest
import torch
from attack_helpers import InterruptAfter, without_time
from conftest import run_cli

from advcl.attacks import advsts, resources, runner, session
from advcl.attacks.advsts import ScoreScale
from advcl.data.catalogue import load_data
from advcl.errors import BadInput, Interrupted

MARGIN = 0.5
# gold = predicted + offset: within the margin (attackable) or already off by it (skipped)
OFFSETS = [0.1, -0.3, 0.0, 1.5, 0.2, -1.2, -0.1, 0.3]


def write_sts_folder(folder, pairs, scores, score_range=(0, 5)):
    folder.mkdir(parents=True)
    meta = {"name": folder.name, "task": "sts", "labels": None, "splits": {"test": len(pairs)}}
    if score_range is not None:
        meta["score_range"] = list(score_range)
    (folder / "meta.json").write_text(json.dumps(meta))
    (folder / "test.jsonl").write_text("".join(json.dumps({"sentence1": a, "sentence2": b, "score": s}) + "\n"
                                               for (a, b), s in zip(pairs, scores)))
    return f"{folder}:test"


@pytest.fixture(scope="module")
def sts_data(tmp_path_factory, wide_bert_dir):
    """``FOLDER:test``: 8 STS-B test pairs with gold scores = the encoder's predicted score + OFFSETS (in [0, 5])."""
    from advcl.evaluation.sts import pair_cosines
    from advcl.runs import load_model

    stsb = load_data("stsb:test").sample(len(OFFSETS), 0)
    loaded = load_model(str(wide_bert_dir))
    cosines = pair_cosines(loaded.model, loaded.tokenizer, stsb, 48, 8, "cpu")
    scale = ScoreScale(0, 5)
    gold = [round(min(max(scale.predict(c) + o, 0.0), 5.0), 3) for c, o in zip(cosines, OFFSETS)]
    folder = tmp_path_factory.mktemp("sts") / "tinysts"
    return write_sts_folder(folder, list(zip(stsb.texts, stsb.pairs)), gold)


def advsts_job(model_dir, data, folder, shard=runner.Shard(), margin=MARGIN, num_examples=0):
    return session.prepare(session.AttackRequest("deepwordbug", str(model_dir), data, num_examples=num_examples,
                                                 seed=3, query_budget=0, model_batch_size=4, max_length=48,
                                                 output=folder, shard=shard, device="cpu", runtime="torch",
                                                 advsts=True, sts_margin=margin))


def deviation(row, which):
    return abs(row[f"{which}_score"] - row["gold_score"])


def test_cosine_maps_linearly_onto_the_declared_range():
    stsb, sick = ScoreScale(0, 5), ScoreScale(1, 5)
    assert [stsb.predict(c) for c in (1.0, 0.5, 0.0, -0.4)] == [5.0, 2.5, 0.0, 0.0]  # negative cosines: the bottom
    assert [sick.predict(c) for c in (1.0, 0.5, 0.0)] == [5.0, 3.0, 1.0]
    assert stsb.default_margin() == 1.0 and sick.default_margin() == pytest.approx(0.8)
    assert advsts.check_margin(None, stsb) == 1.0 and advsts.check_margin(2, stsb) == 2.0
    for bad in (0, -1, 5.5):
        with pytest.raises(BadInput, match="--sts-margin must be above 0 and at most"):
            advsts.check_margin(bad, stsb)


class FakeVictim:
    """Cosines looked up by pair, with what TextAttack's goal functions read off a model wrapper."""

    model = None

    def __init__(self, cosines):
        self.cosines, self.cleared = cosines, 0

    def __call__(self, inputs):
        return torch.tensor([self.cosines[tuple(pair)] for pair in inputs], dtype=torch.float64)

    def clear_cache(self):
        self.cleared += 1


def test_goal_scores_the_deviation_and_completes_at_the_margin(attack_resources):
    from textattack.goal_function_results import GoalFunctionResultStatus as Status
    from textattack.shared import AttackedText

    from advcl.attacks.deviation import SimilarityDeviation

    def text(first, second):
        return AttackedText(OrderedDict(zip(advsts.STS_COLUMNS, (first, second))))

    cosines = {("a", "b"): 0.5, ("a", "c"): 0.7, ("a", "d"): 0.69, ("a", "e"): 0.3, ("a", "f"): -0.5,
               ("a", "g"): 0.9, ("x", "y"): 0.14}
    victim = FakeVictim(cosines)
    goal = SimilarityDeviation(victim, ScoreScale(0, 5), margin=1.0)
    start, _ = goal.init_attack_example(text("a", "b"), advsts.ground_truth(2.5))  # predicted 2.5 = gold
    assert victim.cleared == 1  # each example starts with empty caches
    assert start.goal_status == Status.SEARCHING and start.score == 0 and start.output == 2.5
    results, _ = goal.get_results([text("a", k) for k in "cdefg"])
    # predicted 3.5, 3.45, 1.5, 0 (cosine -0.5 clamps to the bottom), 4.5 against gold 2.5
    assert [r.output for r in results] == pytest.approx([3.5, 3.45, 1.5, 0.0, 4.5])
    assert [r.score for r in results] == pytest.approx([0.2, 0.19, 0.2, 0.5, 0.4])  # deviation / (5 - 0)
    assert [r.goal_status for r in results] == [Status.SUCCEEDED, Status.SEARCHING] + [Status.SUCCEEDED] * 3
    assert goal.num_queries == 6
    # a pair off by the margin before the attack is skipped
    skipped, _ = goal.init_attack_example(text("a", "g"), advsts.ground_truth(3.5))
    assert skipped.goal_status == Status.SKIPPED and goal.num_queries == 1
    # predicted 5 x 0.14 against gold 1.7 is off by 0.9999999999999999 in floats: that reaches a margin of 1
    reached, _ = goal.init_attack_example(text("x", "y"), advsts.ground_truth(1.7))
    assert reached.goal_status == Status.SKIPPED


def test_sentence_victim_gives_evals_pair_cosines(wide_bert_dir, sts_data, tmp_path):
    from advcl.attacks.victim import SentenceVictim, onnx_session
    from advcl.evaluation.sts import pair_cosines
    from advcl.runs import load_model

    loaded = load_model(str(wide_bert_dir))
    dataset = load_data(sts_data)
    expected = torch.from_numpy(pair_cosines(loaded.model, loaded.tokenizer, dataset, 48, 8, "cpu"))
    pairs = list(zip(dataset.texts, dataset.pairs))
    victim = SentenceVictim(loaded.model, loaded.tokenizer, max_length=48, batch_size=3)
    torch.testing.assert_close(victim(pairs), expected, atol=1e-6, rtol=0)
    assert len(victim.cache) == len(set(dataset.texts + dataset.pairs))  # each sentence embedded once
    assert victim([]).shape == (0,)
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnxscript")
    exported = SentenceVictim(loaded.model, loaded.tokenizer, 48, 3, session=onnx_session(loaded, tmp_path))
    torch.testing.assert_close(exported(pairs), expected, atol=1e-5, rtol=0)


def test_attack_end_to_end_rows_and_summary(attack_resources, wide_bert_dir, sts_data, tmp_path):
    folder = tmp_path / "out"
    env = {resources.RESOURCES_ENV: str(attack_resources)}
    args = ("attack", "--attack", "deepwordbug", "--model", str(wide_bert_dir), "--data", sts_data, "-n", "0",
            "--sts-margin", str(MARGIN), "--runtime", "torch", "--max-length", "48", "--output", str(folder),
            "--query-budget", "16")  # some pairs run out of queries: failed
    done = run_cli(*args, "--json", env=env)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["attack"] == "deepwordbug on AdvSTS"
    assert result["options"] == {"sts_margin": MARGIN, "sts_score_range": [0.0, 5.0]}
    rows = [json.loads(line) for line in (folder / "results.jsonl").read_text().splitlines()]
    assert [r["index"] for r in rows] == list(range(len(OFFSETS)))
    dataset = load_data(sts_data)
    for row, first, second, gold in zip(rows, dataset.texts, dataset.pairs, dataset.labels):
        assert (row["original_text"], row["original_text_pair"], row["gold_score"]) == (first, second, gold)
        assert {"perturbed_text", "perturbed_text_pair", "original_score", "perturbed_score", "queries",
                "status"} <= set(row)
        assert row["original_score"] == pytest.approx(5 * max(row["original_cosine"], 0))
        if row["status"] == "skipped":
            assert deviation(row, "original") >= MARGIN - 1e-9 and row["queries"] == 0
        else:
            assert deviation(row, "original") < MARGIN and row["queries"] > 0
            reached = deviation(row, "perturbed") >= MARGIN - 1e-9
            assert reached == (row["status"] == "successful")
            assert (row["perturbed_text"], row["perturbed_text_pair"]) != (first, second) or not reached
    statuses = [r["status"] for r in rows]
    assert set(statuses) == {"successful", "failed", "skipped"}
    assert statuses.count("skipped") == sum(abs(o) >= MARGIN for o in OFFSETS)
    summary = result["summary"]
    reached = sum(r["status"] != "skipped" and deviation(r, "perturbed") >= MARGIN - 1e-9 for r in rows)
    attacked = sum(r["status"] != "skipped" for r in rows)
    assert summary["successful_attacks"] == reached
    assert summary["attack_success_rate"] == round(100 * reached / attacked, 2)
    within = sum(deviation(r, "original") < MARGIN for r in rows)
    assert summary["original_accuracy"] == round(100 * within / len(rows), 2)
    assert summary["accuracy_under_attack"] == round(100 * (attacked - reached) / len(rows), 2)
    # the Spearman before the attack is `advcl eval --suite sts`'s, on the same pairs
    from advcl.evaluation.sts import pair_cosines, spearman
    from advcl.runs import load_model

    loaded = load_model(str(wide_bert_dir))
    cosines = pair_cosines(loaded.model, loaded.tokenizer, dataset, 48, 8, "cpu")
    assert summary["spearman_before"] == round(100 * spearman(cosines, dataset.labels), 2)
    assert summary["spearman_after"] is not None
    assert json.loads((folder / "summary.json").read_text())["summary"] == summary

    table = run_cli(*args, env=env)  # every pair is done: only the summary, as a table
    assert table.returncode == 0, table.stderr
    assert "deepwordbug on AdvSTS" in table.stdout and "Spearman x100 under attack" in table.stdout
    assert "Pairs within the margin" in table.stdout


def test_interrupted_attack_resumes_without_repeating_and_shards_fill_one_folder(attack_resources, wide_bert_dir,
                                                                                  sts_data, tmp_path):
    expected = without_time(session.execute(advsts_job(wide_bert_dir, sts_data, tmp_path / "whole")))
    assert [r["index"] for r in expected] == list(range(len(OFFSETS)))

    job = advsts_job(wide_bert_dir, sts_data, tmp_path / "resumed")
    job.attack = InterruptAfter(job.attack, 3)
    with pytest.raises(Interrupted, match=f"after 3 of {len(OFFSETS)} examples"):
        session.execute(job)
    job = advsts_job(wide_bert_dir, sts_data, tmp_path / "resumed")
    assert sorted(job.done) == [0, 1, 2]
    job.attack = InterruptAfter(job.attack, 99)
    assert without_time(session.execute(job)) == expected
    assert len(job.attack.attacked) == len(OFFSETS) - 3  # only the unfinished pairs
    assert len((tmp_path / "resumed" / "results.jsonl").read_text().splitlines()) == len(OFFSETS)

    for k in (1, 2):
        shard = advsts_job(wide_bert_dir, sts_data, tmp_path / "sharded", runner.Shard(k, 2))
        assert without_time(session.execute(shard)) == expected[k - 1 :: 2]
    job = advsts_job(wide_bert_dir, sts_data, tmp_path / "sharded")
    job.attack = InterruptAfter(job.attack, 0)
    assert without_time(session.execute(job)) == expected
    with pytest.raises(BadInput, match="holds results of another attack"):  # the margin decides the results
        advsts_job(wide_bert_dir, sts_data, tmp_path / "sharded", margin=1.0)


@pytest.mark.parametrize("case,fragment", [
    ("one pair", "AdvSTS needs at least 2 pairs"),
    ("no range", "declares no score range"),
    ("margin too wide", "--sts-margin must be above 0 and at most the score range's width 5"),
    ("margin on classification", "--sts-margin is for AdvSTS, on an STS split"),
])
def test_bad_input(attack_resources, wide_bert_dir, sts_data, tmp_path, case, fragment):
    pairs = [("a man is playing a guitar .", "a man plays the guitar .")] * 2
    data = {"one pair": write_sts_folder(tmp_path / "one", pairs[:1], [4.0]),
            "no range": write_sts_folder(tmp_path / "norange", pairs, [4.0, 3.0], score_range=None)}.get(case, sts_data)
    margin = {"margin too wide": 6.0, "margin on classification": 1.0}.get(case)
    if case == "margin on classification":
        data = "sst2:validation"
    with pytest.raises(BadInput, match=fragment):
        advsts_job(wide_bert_dir, data, tmp_path / "out", margin=margin)


def test_errors_are_one_line(attack_resources, wide_bert_dir, sts_data, tmp_path):
    env = {resources.RESOURCES_ENV: str(attack_resources)}
    done = run_cli("attack", "-a", "deepwordbug", "-m", str(wide_bert_dir), "-d", sts_data, "-n", "1",
                   "-o", str(tmp_path / "out"), env=env)
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "at least 2 pairs" in lines[0], done.stderr
    # advcl perturb builds classification datasets: an STS split is refused there
    done = run_cli("perturb", "-a", "deepwordbug", "-m", str(wide_bert_dir), "-d", sts_data, "-o", str(tmp_path / "p"),
                   env=env)
    assert done.returncode == 2 and "AdvSTS runs in `advcl attack`" in done.stderr, done.stderr
