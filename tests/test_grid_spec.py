"""advcl grid: the grid file's expansion into named jobs against a hand-written list, and its validation
(one line naming the key, exit 2, before anything runs)."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest
from conftest import assert_one_line_error, run_cli, write_tiny_recipe

from advcl.grid.spec import GridError, load_grid
from advcl.grid.steps import pending_steps


def grid_file(folder: Path, text: str) -> Path:
    path = folder / "grid.toml"
    path.write_text(textwrap.dedent(text))
    return path


@pytest.fixture
def recipes(tmp_path, tiny_model_dir):
    """Two recipe files a glob finds (a_tiny, b_tiny) and one named method's (tiny.toml)."""
    tiny = write_tiny_recipe(tmp_path, tiny_model_dir)
    (tmp_path / "globbed").mkdir()
    for stem in ("b_tiny", "a_tiny"):
        (tmp_path / "globbed" / f"{stem}.toml").write_text(tiny.read_text())
    return tmp_path


def test_expansion_and_names_match_a_hand_written_list(recipes):
    path = grid_file(recipes, f"""
        output_dir = "{recipes}/out"
        seeds = [0, 3]
        baseline = "base"
        [set]
        "train.epochs" = 1
        data = {{ max_eval_examples = 16 }}
        [axes]
        "train.lr" = [1e-3, 2e-4]
        "objective.eps" = [0.5]
        "perturber.eps" = [0.25]
        [[method]]
        name = "base"
        recipe = "{recipes}/tiny.toml"
        set = {{ "run.deterministic" = false }}
        [[method]]
        recipe = "{recipes}/globbed/*_tiny.toml"
        seeds = [5]
        needs = ["base"]
        [[model]]
        name = "untouched"
        path = "{recipes}/model"
        [[evaluate]]
        data = "sst2:validation"
        max_examples = 20
        [[evaluate]]
        suite = "sts"
        """)
    grid = load_grid(path, check_recipes=False)
    axes = ["lr_0.001-objective_eps_0.5-perturber_eps_0.25", "lr_0.0002-objective_eps_0.5-perturber_eps_0.25"]
    expected = ([f"base-{a}-s{s}" for a in axes for s in (0, 3)]
                + [f"{m}-{a}-s5" for m in ("a_tiny", "b_tiny") for a in axes] + ["untouched"])
    assert [j.name for j in grid.jobs] == expected
    first = grid.jobs[0]
    assert first.overrides == ["train.epochs=1", "data.max_eval_examples=16", "train.lr=0.001", "objective.eps=0.5",
                               "perturber.eps=0.25", "run.deterministic=false", 'run.name="' + first.name + '"',
                               f'run.output_dir="{recipes}/out"', "run.seed=0"]
    assert first.setting == "base-" + axes[0] and first.model == f"{recipes}/out/{first.name}"
    globbed = grid.job(f"a_tiny-{axes[1]}-s5")
    assert globbed.recipe == f"{recipes}/globbed/a_tiny.toml"
    assert globbed.needs == [f"base-{a}-s{s}" for a in axes for s in (0, 3)]  # base has no seed 5: all its runs
    model = grid.job("untouched")
    assert (model.kind, model.model, model.seed) == ("model", f"{recipes}/model", None)
    steps = pending_steps(grid, model)
    assert [s.label for s in steps] == ["sst2:validation@20", "sts"]
    assert steps[0].args[:3] == ["eval", "--model", f"{recipes}/model"] and "--predictions" in steps[0].args
    assert [s.label for s in pending_steps(grid, first)] == ["train", "sst2:validation@20", "sts"]


def test_seed_and_output_dir_fill_string_overrides(recipes):
    path = grid_file(recipes, f"""
        output_dir = "out"
        seeds = [4]
        [[method]]
        name = "gen"
        recipe = "{recipes}/tiny.toml"
        evaluate = false
        [[method]]
        name = "user"
        recipe = "{recipes}/tiny.toml"
        needs = ["gen"]
        set = {{ "model.name" = "{{output_dir}}/gen-s{{seed}}" }}
        """)
    grid = load_grid(path, check_recipes=False)
    assert 'model.name="out/gen-s4"' in grid.job("user-s4").overrides
    assert grid.job("gen-s4").evaluations == [] and grid.job("user-s4").needs == ["gen-s4"]


def test_a_run_waits_for_the_runs_of_a_needed_method_its_settings_name(recipes):
    path = grid_file(recipes, f"""
        output_dir = "out"
        seeds = [1, 10]
        [axes]
        "train.lr" = [0.1, 0.2]
        [[method]]
        name = "gen"
        recipe = "{recipes}/tiny.toml"
        evaluate = false
        [[method]]
        name = "own"
        recipe = "{recipes}/tiny.toml"
        needs = ["gen"]
        set = {{ "model.name" = "{{output_dir}}/gen-lr_0.2-s{{seed}}" }}
        [[method]]
        name = "fixed"
        recipe = "{recipes}/tiny.toml"
        needs = ["gen"]
        set = {{ "model.name" = "{{output_dir}}/gen-lr_0.1-s1" }}
        [[method]]
        name = "any"
        recipe = "{recipes}/tiny.toml"
        needs = ["gen"]
        """)
    grid = load_grid(path, check_recipes=False)
    gens = [f"gen-lr_{lr}-s{s}" for lr in (0.1, 0.2) for s in (1, 10)]
    assert [j.name for j in grid.jobs if j.method == "gen"] == gens
    assert grid.job("own-lr_0.1-s10").needs == ["gen-lr_0.2-s10"]  # the one it names: s10, not s1 as a prefix
    assert grid.job("own-lr_0.2-s1").needs == ["gen-lr_0.2-s1"]
    assert grid.job("fixed-lr_0.2-s10").needs == ["gen-lr_0.1-s1"]  # a fixed generator for every seed
    assert grid.job("any-lr_0.1-s1").needs == gens  # names none of them: all

    def names(*patterns):
        return [j.name for j in grid.select(list(patterns))]

    assert names() == [j.name for j in grid.jobs]
    # a method, with the one generator it needs; in the grid's order (generators first)
    assert names("own-lr_0.1-s10") == ["gen-lr_0.2-s10", "own-lr_0.1-s10"]
    assert names("fixed") == ["gen-lr_0.1-s1"] + [f"fixed-lr_{lr}-s{s}" for lr in (0.1, 0.2) for s in (1, 10)]
    assert names("gen-*-s1", "own-lr_0.2-s1") == ["gen-lr_0.1-s1", "gen-lr_0.2-s1", "own-lr_0.2-s1"]
    assert names("fixed-lr_0.2") == ["gen-lr_0.1-s1", "fixed-lr_0.2-s1", "fixed-lr_0.2-s10"]  # a setting
    with pytest.raises(GridError, match="--only 'own-s1' matches no job of .* \\(jobs: gen-lr_0.1-s1, "):
        grid.select(["own-s1"])


BAD = [
    ("seed = [0]\n[[method]]\nrecipe = '{r}/tiny.toml'", "unknown grid key 'seed' (did you mean 'seeds'?)"),
    ("[[method]]\nrecipe = '{r}/tiny.toml'\nrecipes = 1",
     "unknown grid key 'method[0].recipes' (did you mean 'method[0].recipe'?)"),
    ("[[method]]\nrecipe = '{r}/tiny.toml'\n[[evaluate]]\ndata = 'sst2:validation'\nrobsut = 'pgd'",
     "unknown grid key 'evaluate[0].robsut' (did you mean 'evaluate[0].robust'?)"),
    ("seeds = ['zero']\n[[method]]\nrecipe = '{r}/tiny.toml'", "'seeds[0]' must be an integer"),
    ("[[method]]\nrecipe = '{r}/tiny.toml'\n[axes]\n'train.lr' = 0.1", "'axes.train.lr' must be a non-empty list"),
    ("[[method]]\nrecipe = '{r}/nope.toml'", "'method[0].recipe': recipe not found"),
    ("[[method]]\nrecipe = '{r}/*.nothing'", "matches no file"),
    ("baseline = 'x'\n[[method]]\nrecipe = '{r}/tiny.toml'", "'baseline' = 'x' is no evaluated setting"),
    ("[[method]]\nrecipe = '{r}/tiny.toml'\nneeds = ['gen']", "needs 'gen', which is no method"),
    ("[[method]]\nrecipe = '{r}/tiny.toml'\n[[evaluate]]\ndata = 'sst2:validation'\nsuite = 'sts'",
     "needs exactly one of 'data'"),
    ("[[method]]\nrecipe = '{r}/tiny.toml'\n[[evaluate]]\ndata = 'sst2:validation'\neps = [0.1]",
     "add robust = \"pgd\""),
    ("[[method]]\nrecipe = '{r}/tiny.toml'\n[[evaluate]]\ndata = 'sst2:validation'\nmax_length = 64",
     "max_length (at least 1) goes with a suite or a text attack"),
    ("[[method]]\nrecipe = '{r}/tiny.toml'\n[[evaluate]]\nsuite = 'sts'\nmax_length = -1",
     "max_length (at least 1) goes with a suite or a text attack"),
    ("[[method]]\nrecipe = '{r}/tiny.toml'\n[[evaluate]]\nsuite = 'sts'\n[[evaluate]]\nsuite = 'sts'",
     "two evaluations are named 'sts'"),
    ("[[method]]\nrecipe = '{r}/tiny.toml'\n[[method]]\nrecipe = '{r}/tiny.toml'", "two jobs are named 'tiny-s0'"),
    ("[[method]]\nrecipe = '{r}/tiny.toml'\n[set]\n'train.lrr' = 0.1",
     "run tiny-s0 ({r}/tiny.toml): unknown recipe key 'train.lrr' (did you mean 'train.lr'?)"),
    ("[[method]]\nrecipe = '{r}/tiny.toml'\n[axes]\n'train.epochs' = [1, -1]", "'train.epochs'"),
    ("[[model]]\nname = '/opt/models/minilm'", "'/opt/models/minilm' is no name for a method, model or perturb"),
    ("[[model]]\nname = '../minilm'", "'../minilm' is no name for a method, model or perturb"),
]


@pytest.mark.parametrize("body, message", BAD, ids=[m[:40] for _, m in BAD])
def test_a_bad_grid_is_one_error_naming_the_key(recipes, body, message):
    path = grid_file(recipes, f"output_dir = '{recipes}/out'\n" + body.format(r=recipes))
    with pytest.raises(GridError) as error:
        load_grid(path)
    assert message.format(r=recipes) in str(error.value) and "\n" not in str(error.value)


def test_cli_refuses_a_bad_grid_before_anything_runs(recipes):
    path = grid_file(recipes, f"output_dir = '{recipes}/out'\n[[method]]\nrecipe = '{recipes}/tiny.toml'\n"
                              "[[evaluate]]\ndata = 'sst2:validation'\ncheckpont = 'last'\n")
    result = run_cli("grid", "run", str(path), "--workers", "1")
    assert result.returncode == 2, result.stderr
    assert result.stderr.strip().splitlines() == [
        f"error: {path}: unknown grid key 'evaluate[0].checkpont' (did you mean 'evaluate[0].checkpoint'?)"]
    assert not (recipes / "out").exists()
    too_many = run_cli("grid", "run", str(path.with_name("none.toml")))
    assert too_many.returncode == 2 and "grid file not found" in too_many.stderr


class ScriptedExecutor:
    """Jobs that end as scripted (ok or failed) on their second look, without any process."""

    def __init__(self, failing: set[str]):
        self.failing, self.started = failing, []

    def start(self, job):
        self.started.append(job.name)
        return [job.name, 0]

    def poll(self, handle):
        from advcl.grid.steps import Outcome

        handle[1] += 1
        if handle[1] < 2:
            return None
        return Outcome(handle[0], handle[0] not in self.failing, "boom" if handle[0] in self.failing else "", ["x"])

    def stop(self, handles):
        pass


def test_scheduling_a_failure_costs_only_itself_and_what_needs_it(recipes, monkeypatch):
    from advcl.grid import local
    from advcl.grid.local import View, drive

    monkeypatch.setattr(local, "POLL_SECONDS", 0)
    needs = {"first": [], "after_first": ["first"], "other": [], "loop_a": ["loop_b"], "loop_b": ["loop_a"]}
    path = grid_file(recipes, f'output_dir = "{recipes}/out"\n' + "".join(
        f'[[method]]\nname = "{name}"\nrecipe = "{recipes}/tiny.toml"\nneeds = {wanted}\n'
        for name, wanted in needs.items()))
    grid = load_grid(path, check_recipes=False)
    executor = ScriptedExecutor({"first-s0"})
    queue = drive(grid.jobs, executor, View(len(grid.jobs), enabled=False), capacity=1)
    assert executor.started == ["first-s0", "other-s0"]  # one at a time; after_first never starts
    assert queue.done == {"other-s0"}
    assert queue.failed == {"first-s0": "boom", "after_first-s0": "needs first-s0, which failed",
                            "loop_a-s0": "its needs wait on each other", "loop_b-s0": "its needs wait on each other"}


def test_a_run_folder_made_with_other_settings_is_not_taken_for_the_grids(recipes):
    from advcl.config.recipe import load_recipe, recipe_to_toml
    from advcl.grid.steps import stale_settings

    path = grid_file(recipes, f"""
        output_dir = "{recipes}/out"
        [set]
        "train.lr" = 3e-4
        [[method]]
        name = "m"
        recipe = "{recipes}/tiny.toml"
        """)
    job = load_grid(path).job("m-s0")
    assert stale_settings(job) == ""  # no folder yet
    folder = recipes / "out" / "m-s0"
    folder.mkdir(parents=True)
    (folder / "config.toml").write_text(recipe_to_toml(load_recipe(job.recipe, job.overrides)))
    assert stale_settings(job) == ""  # the same settings: resumed or skipped
    (folder / "config.toml").write_text(recipe_to_toml(load_recipe(job.recipe, [*job.overrides, "train.lr=1e-4"])))
    assert stale_settings(job) == (f"run folder {folder} was made with other settings than the grid asks "
                                   "(train.lr = 0.0001 there, 0.0003 in the grid): move it away or change output_dir")


def test_the_docs_results_grids_validate_and_expand(monkeypatch):
    """docs/results/*.toml (the experiments of docs/results.md) against the recipes as they are now."""
    root = Path(__file__).resolve().parents[1]
    monkeypatch.chdir(root)  # their paths are relative to the project root
    grids = {p.stem: load_grid(p) for p in sorted((root / "docs" / "results").glob("*.toml"))}
    seeds = (0, 1, 2)
    assert [j.name for j in grids["sst2_supervised"].jobs] == [
        f"{m}-s{s}" for m in ("scal", "cat", "vanilla", "cat_half", "scal_no_contrast") for s in seeds]
    assert "objective.contrast_weight=0.0" in grids["sst2_supervised"].job("scal_no_contrast-s2").overrides
    assert [e.label for e in grids["sst2_supervised"].spec.evaluate] == ["clean", "pgd"]
    assert 'data.max_train_examples=3000' in grids["sst2_supervised"].job("cat_half-s1").overrides
    sentences = grids["sentence_embeddings"]
    assert [j.name for j in sentences.jobs] == [f"{m}-s{s}" for m in ("mlm_head", "rse", "uscal", "simcse")
                                                for s in seeds] + ["all-MiniLM-L6-v2"]
    assert sentences.job("rse-s2").needs == ["mlm_head-s2"] and sentences.job("mlm_head-s0").evaluations == []
    text = grids["adversarial_text"]
    assert [j.name for j in text.jobs] == ["sst2_pwws"] + [f"{m}-s{s}" for m in ("taichi", "ada", "taichi_no_ctr",
                                                                                "vanilla") for s in seeds]
    assert 'data.train="runs/results/text/sst2_pwws:train"' in text.job("ada-s0").overrides
    assert 'objective.ablation="no_ctr"' in text.job("taichi_no_ctr-s1").overrides
    assert [e.label for e in text.spec.evaluate] == ["clean", "pwws:sst2:test", "textfooler:sst2:test"]
    downstream = grids["sentence_downstream"]  # each seed starts from the sentence grid's run of its method and seed
    assert [j.name for j in downstream.jobs] == [f"{m}-s{s}" for m in ("rse", "uscal", "simcse", "minilm") for s in seeds]
    assert 'model.name="runs/results/sentences/rse-s1"' in downstream.job("rse-s1").overrides
    assert [e.label for e in downstream.spec.evaluate] == ["clean", "textfooler:sst2:test", "pwws:sst2:test"]
    for name, jobs in (("trec_supervised", 9), ("agnews_robust", 12), ("intents_lowresource_banking77", 12)):
        assert grids[name].spec.baseline == "vanilla" and len(grids[name].jobs) == jobs


def test_workers_share_the_cores_and_never_oversubscribe_them():
    from advcl.errors import BadInput
    from advcl.grid.local import thread_count

    assert thread_count(2, 0, cores=16) == 8 and thread_count(3, 0, cores=16) == 5 and thread_count(1, 2, cores=4) == 2
    for workers, threads in ((3, 0), (2, 2), (0, 1)):
        with pytest.raises(BadInput):
            thread_count(workers, threads, cores=2)


def test_dry_run_lists_every_job_and_the_commands_it_would_run(recipes):
    path = grid_file(recipes, f"""
        output_dir = "{recipes}/out"
        seeds = [1, 2]
        [[method]]
        name = "m"
        recipe = "{recipes}/tiny.toml"
        [[evaluate]]
        data = "sst2:validation"
        robust = "pgd"
        eps = [0.05, 0.1]
        steps = 3
        [[evaluate]]
        attack = "pwws"
        data = "sst2:validation"
        num_examples = 7
        max_length = 64
        [[evaluate]]
        suite = "sts"
        max_length = 256
        """)
    result = run_cli("grid", "run", str(path), "--dry-run", "--json")
    assert result.returncode == 0, result.stderr
    listing = json.loads(result.stdout)
    assert [(j["job"], j["seed"], [s["step"] for s in j["steps"]]) for j in listing] == [
        (f"m-s{s}", s, ["train", "pgd:sst2:validation", "pwws:sst2:validation", "sts"]) for s in (1, 2)]
    train, robust, attack, sts = listing[1]["steps"]
    assert train["command"].startswith(f"advcl train --recipe {recipes}/tiny.toml --set ")
    assert train["command"].endswith(f'--set run.name="m-s2" --set run.output_dir="{recipes}/out" --set run.seed=2')
    assert robust["command"] == (f"advcl eval --model {recipes}/out/m-s2 --checkpoint best --json --max-examples 0 "
                                 "--data sst2:validation --robust pgd --eps 0.05,0.1 --steps 3")
    assert attack["command"] == (f"advcl attack --attack pwws --data sst2:validation --num-examples 7 --seed 0 "
                                 f"--output {recipes}/out/_grid/m-s2/attack-pwws_sst2_validation "
                                 f"--model {recipes}/out/m-s2 --checkpoint best --json --max-length 64")
    assert sts["command"] == (f"advcl eval --model {recipes}/out/m-s2 --checkpoint best --json --max-length 256 "
                              "--max-examples 0 --suite sts --protocol senteval")
    assert not (recipes / "out").exists()  # a dry run writes nothing
    only = run_cli("grid", "run", str(path), "--dry-run", "--json", "--only", "m-s1")
    assert only.returncode == 0, only.stderr
    assert [j["job"] for j in json.loads(only.stdout)] == ["m-s1"]
    assert_one_line_error(run_cli("grid", "run", str(path), "--only", "x*"), "--only 'x*' matches no job")
