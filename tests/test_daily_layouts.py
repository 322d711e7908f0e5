"""Issue 17, item 5: the documented layouts compose: `advcl report runs/*` with a dataset folder that
`advcl perturb --output runs/adv/...` wrote among the run folders."""

import json
import shutil

import pytest

from conftest import run_cli
from daily_helpers import train_tiny


@pytest.fixture(scope="module")
def runs_folder(tmp_path_factory, tiny_model_dir):
    runs = train_tiny(tmp_path_factory.mktemp("layouts"), tiny_model_dir).parent
    shutil.copytree(runs / "tiny", runs / "tiny-copy")
    dataset = runs / "adv" / "sst2_pwws"  # what advcl perturb --output runs/adv/sst2_pwws leaves
    (dataset / "train.attack").mkdir(parents=True)
    (dataset / "meta.json").write_text(json.dumps({"task": "classification", "labels": ["negative", "positive"]}))
    (dataset / "train.jsonl").write_text("")
    return runs


def test_report_over_runs_star_skips_the_dataset_folders(runs_folder, tmp_path):
    paths = sorted(str(p) for p in runs_folder.iterdir())  # runs/* as the shell expands it: adv comes first
    assert paths[0].endswith("adv")
    done = run_cli("report", *paths, "--output", str(tmp_path / "out"), "--trials", "100", "--json")
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert [r["run"] for r in result["runs"]] == ["tiny", "tiny-copy"]
    assert result["skipped"] == {paths[0]: "a folder of datasets (advcl perturb --output writes these)"}
    assert f"note: skipped {paths[0]}: a folder of datasets" in done.stderr
    assert "note: the baseline is tiny" in done.stderr
    assert "Skipped (not run folders)" in (tmp_path / "out" / "report.md").read_text()
    dataset = runs_folder / "adv" / "sst2_pwws"
    done = run_cli("report", str(runs_folder / "tiny"), str(dataset), "--output", str(tmp_path / "out2"), "--json")
    assert done.returncode == 0 and json.loads(done.stdout)["skipped"] == {
        str(dataset): "a dataset folder (advcl perturb --output writes these)"}


def test_report_still_refuses_what_cannot_be_a_run(runs_folder, tmp_path):
    missing = runs_folder / "carl_sst2"
    done = run_cli("report", str(runs_folder / "tiny"), str(missing), "--output", str(tmp_path / "o1"))
    assert done.returncode == 2 and done.stderr.strip() == f"error: {missing} does not exist"
    done = run_cli("report", str(runs_folder / "adv"), str(runs_folder / "adv" / "sst2_pwws"),
                   "--output", str(tmp_path / "o2"))
    assert done.returncode == 2 and "none of the 2 folders is a run folder" in done.stderr
    assert not (tmp_path / "o1").exists() and not (tmp_path / "o2").exists()
