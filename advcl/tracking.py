"""Experiment trackers: ``run.trackers = ["tensorboard"]`` / ``["mlflow"]`` mirror a training run's metrics.

metrics.jsonl stays the source of truth: every row :meth:`advcl.runs.RunFolder.append_metrics` writes there is
handed to each tracker as it is written, one scalar per numeric field, named ``SPLIT/FIELD`` (``train/loss``,
``validation/accuracy``) at the row's optimizer step; the resolved recipe goes along once at the start. Only the
main process (rank 0) tracks, as only it writes metrics.jsonl.

- ``tensorboard`` (``pip install 'advcl[tensorboard]'``): event files in ``RUN/tensorboard/`` (``tensorboard
  --logdir RUN/tensorboard``), the recipe as the text summary ``recipe``; a resumed run drops the events logged
  after its checkpoint, as metrics.jsonl does.
- ``mlflow`` (``pip install 'advcl[mlflow]'``): a run named after ``run.name`` in the experiment ``advcl`` of the
  tracking server ``MLFLOW_TRACKING_URI`` names, else of a local store in ``RUN/mlruns/`` (``mlflow ui
  --backend-store-uri RUN/mlruns``); the recipe's fields as parameters and config.toml as an artifact. A resumed
  run continues the MLflow run it started (its id is kept in ``RUN/mlruns_run_id``).
"""

from __future__ import annotations

import contextlib
import numbers
import os
import time
from collections.abc import Iterator

from advcl.config.recipe import recipe_to_toml
from advcl.config.schema import Recipe
from advcl.config.validate import to_dict
from advcl.errors import BadInput

TRACKERS = ("tensorboard", "mlflow")
EXPERIMENT = "advcl"
PARAM_LIMIT = 500  # characters of an MLflow parameter value


def scalars(row: dict) -> tuple[int, dict[str, float]]:
    """The step of a metrics.jsonl row and its numeric fields as ``SPLIT/FIELD`` scalars."""
    split = row.get("split", "train")
    values = {f"{split}/{key}": float(value) for key, value in row.items()
              if key not in ("step", "split") and isinstance(value, numbers.Real) and not isinstance(value, bool)}
    return int(row.get("step", 0)), values


def _needs(package: str, extra: str) -> BadInput:
    return BadInput(f"run.trackers = [\"{extra}\"] needs {package}: pip install 'advcl[{extra}]'")


class TensorBoardTracker:
    def __init__(self, recipe: Recipe, run, start_step: int):
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:
            raise _needs("the tensorboard package", "tensorboard") from None
        self.writer = SummaryWriter(str(run.path / "tensorboard"), purge_step=start_step or None)
        if not start_step:
            self.writer.add_text("recipe", "```toml\n" + recipe_to_toml(recipe) + "```", 0)

    def log(self, row: dict) -> None:
        step, values = scalars(row)
        for name, value in values.items():
            self.writer.add_scalar(name, value, step)
        self.writer.flush()

    def close(self) -> None:
        self.writer.close()


def flat_params(recipe: Recipe) -> dict[str, str]:
    """The recipe's fields as ``section.key`` -> text (nested tables dotted), each cut to MLflow's limit."""
    flat: dict[str, str] = {}

    def walk(prefix: str, value) -> None:
        if isinstance(value, dict):
            for key, item in value.items():
                walk(f"{prefix}.{key}" if prefix else key, item)
        else:
            flat[prefix] = str(value)[:PARAM_LIMIT]

    walk("", to_dict(recipe))
    return flat


class MlflowTracker:
    def __init__(self, recipe: Recipe, run, start_step: int):
        try:
            from mlflow.tracking import MlflowClient
        except ImportError:
            raise _needs("mlflow", "mlflow") from None
        uri = os.environ.get("MLFLOW_TRACKING_URI")
        if not uri:  # a local store inside the run folder (MLflow keeps its file store behind this switch)
            os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
            uri = (run.path / "mlruns").resolve().as_uri()
        self.client = MlflowClient(uri)
        self.id_file = run.path / "mlruns_run_id"
        if start_step and self.id_file.is_file():
            self.run_id = self.id_file.read_text().strip()
            return
        experiment = self.client.get_experiment_by_name(EXPERIMENT)
        experiment_id = experiment.experiment_id if experiment else self.client.create_experiment(EXPERIMENT)
        self.run_id = self.client.create_run(experiment_id, run_name=recipe.run.name).info.run_id
        self.id_file.write_text(self.run_id + "\n")
        from mlflow.entities import Param

        self.client.log_batch(self.run_id, params=[Param(k, v) for k, v in flat_params(recipe).items()])
        self.client.log_text(self.run_id, recipe_to_toml(recipe), "config.toml")

    def log(self, row: dict) -> None:
        from mlflow.entities import Metric

        step, values = scalars(row)
        stamp = int(time.time() * 1000)
        self.client.log_batch(self.run_id, metrics=[Metric(k, v, stamp, step) for k, v in values.items()])

    def close(self) -> None:
        self.client.set_terminated(self.run_id)


TRACKER_CLASSES = {"tensorboard": TensorBoardTracker, "mlflow": MlflowTracker}


@contextlib.contextmanager
def tracking(recipe: Recipe, run, start_step: int = 0, enabled: bool = True) -> Iterator[list]:
    """Open the recipe's trackers for the duration (``enabled``: this process writes metrics.jsonl) and hand
    them every row ``run`` appends; closed on the way out, whatever happened."""
    trackers: list = []
    run.trackers = trackers
    try:
        for name in recipe.run.trackers if enabled else []:
            trackers.append(TRACKER_CLASSES[name](recipe, run, start_step))
        yield trackers
    finally:
        run.trackers = []
        for tracker in trackers:
            with contextlib.suppress(Exception):  # a tracker failing to close must not hide the run's own outcome
                tracker.close()
