"""Issue 17, item 7: run.trackers mirrors metrics.jsonl into TensorBoard and MLflow (local stores, offline),
with the resolved recipe; only where tracking is enabled (rank 0); a missing extra is one line."""

import json
import sys

import pytest

from advcl.config.recipe import load_recipe
from advcl.config.validate import RecipeError
from advcl.errors import BadInput
from advcl.runs import RunFolder
from advcl.tracking import TensorBoardTracker, scalars, tracking
from conftest import run_cli, write_tiny_recipe

pytest.importorskip("tensorboard")  # the test extra installs it; mlflow (its own extra) may be absent
try:
    import mlflow  # noqa: F401
    TRACKERS = ["tensorboard", "mlflow"]
except ImportError:
    TRACKERS = ["tensorboard"]


@pytest.fixture(scope="module")
def tracked_run(tmp_path_factory, tiny_model_dir):
    folder = tmp_path_factory.mktemp("tracked")
    recipe = write_tiny_recipe(folder, tiny_model_dir, run={"trackers": TRACKERS},
                               train={"epochs": 1, "eval_every": 3, "log_every": 2},
                               data={"max_train_examples": 48, "max_eval_examples": 16})
    done = run_cli("train", "--recipe", str(recipe), env={"MLFLOW_TRACKING_URI": ""})
    assert done.returncode == 0, done.stderr
    run = folder / "runs" / "tiny"
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert {r["split"] for r in rows} == {"train", "validation"}
    return run, rows


def expected_scalars(rows):
    expected = {}
    for row in rows:
        step, values = scalars(row)
        for name, value in values.items():
            expected.setdefault(name, []).append((step, value))
    return expected


def test_tensorboard_holds_every_metrics_row_and_the_recipe(tracked_run):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    run, rows = tracked_run
    events = EventAccumulator(str(run / "tensorboard"), size_guidance={"scalars": 0, "tensors": 0}).Reload()
    expected = expected_scalars(rows)
    assert set(events.Tags()["scalars"]) == set(expected) >= {"train/loss", "train/lr", "validation/accuracy"}
    for name, points in expected.items():
        logged = [(e.step, e.value) for e in events.Scalars(name)]
        assert [s for s, _ in logged] == [s for s, _ in points]
        assert [v for _, v in logged] == pytest.approx([v for _, v in points], rel=1e-6)  # float32 in the events
    [recipe] = events.Tensors("recipe/text_summary")
    assert (run / "config.toml").read_text() in recipe.tensor_proto.string_val[0].decode()  # the resolved recipe


def test_mlflow_local_store_holds_the_metrics_params_and_recipe(tracked_run, monkeypatch):
    pytest.importorskip("mlflow")
    from mlflow.tracking import MlflowClient

    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")  # reading MLflow's file store, as advcl wrote it

    run, rows = tracked_run
    client = MlflowClient((run / "mlruns").resolve().as_uri())
    run_id = (run / "mlruns_run_id").read_text().strip()
    tracked = client.get_run(run_id)
    assert tracked.info.run_name == "tiny" and tracked.info.status == "FINISHED"
    assert tracked.data.params["train.lr"] == "0.001" and tracked.data.params["run.trackers"] == str(TRACKERS)
    for name, points in expected_scalars(rows).items():
        history = sorted((m.step, m.value) for m in client.get_metric_history(run_id, name))
        assert history == sorted(points), name
    config = client.download_artifacts(run_id, "config.toml", str(run.parent))
    assert open(config).read() == (run / "config.toml").read_text()


def test_no_trackers_where_tracking_is_off(tmp_path):
    recipe = load_recipe(None, ["run.trackers=[\"tensorboard\"]"], data={"data": {"train": "sst2:train"}})
    run = RunFolder(tmp_path)
    with tracking(recipe, run, enabled=False) as trackers:  # another rank than 0
        assert trackers == [] and run.trackers == []
        run.append_metrics({"step": 1, "split": "train", "loss": 1.0})
    assert not (tmp_path / "tensorboard").exists()
    with tracking(recipe, run) as trackers:
        assert len(trackers) == 1 and run.trackers == trackers
    assert run.trackers == [] and (tmp_path / "tensorboard").is_dir()


def test_a_missing_extra_and_an_unknown_tracker_are_one_line(tmp_path, monkeypatch):
    recipe = load_recipe(None, ["run.trackers=[\"tensorboard\"]"], data={"data": {"train": "sst2:train"}})
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)  # as if the extra were not installed
    with pytest.raises(BadInput, match=r"needs the tensorboard package: pip install 'advcl\[tensorboard\]'"):
        TensorBoardTracker(recipe, RunFolder(tmp_path), 0)
    with pytest.raises(RecipeError, match=r"'run.trackers\[0\]' must be one of 'tensorboard', 'mlflow', got 'wandb'"):
        load_recipe(None, ["run.trackers=[\"wandb\"]"], data={"data": {"train": "sst2:train"}})
