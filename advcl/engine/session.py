"""Start or resume a training run: recipe -> data + model -> engine -> run folder."""

from __future__ import annotations

import shutil
from pathlib import Path

from advcl.config.recipe import load_recipe, recipe_to_toml
from advcl.config.schema import Recipe
from advcl.data.batching import encode
from advcl.data.catalogue import load_data
from advcl.data.dataset import Columns
from advcl.engine.checkpoint import latest_checkpoint
from advcl.engine.devices import check_precision, pick_device, seed_everything
from advcl.engine.progress import stderr
from advcl.engine.trainer import Trainer
from advcl.engine.validation import make_validator
from advcl.errors import BadInput
from advcl.modeling.encoder import EncoderClassifier
from advcl.modeling.loading import load_classifier
from advcl.objectives.base import create
from advcl.plugins import registry
from advcl.runs import RunFolder


def run_folder_for(recipe: Recipe) -> RunFolder:
    return RunFolder(Path(recipe.run.output_dir) / recipe.run.name)


def _build(recipe: Recipe, run: RunFolder, fresh: bool) -> Trainer:
    """Everything up to the first step; the same calls in the same order for a fresh and a resumed run."""
    device = pick_device(recipe.run.device)
    check_precision(device, recipe.run.precision)
    seed_everything(recipe.run.seed, recipe.run.deterministic)
    d = recipe.data
    columns = Columns(d.text_column, d.text_pair_column, d.label_column)
    train = load_data(d.train, columns, d.labels or None).sample(d.max_train_examples, recipe.run.seed)
    needs_labels = registry().get("objective", recipe.objective.name).cls.needs_labels
    if needs_labels and (train.labels is None or train.task == "sts"):
        raise BadInput(f"objective '{recipe.objective.name}' needs labelled classification data; {d.train} is {train.task}")
    label_names = train.label_names if needs_labels else None
    validation = None
    if d.validation:
        validation = load_data(d.validation, columns, label_names).sample(d.max_eval_examples, recipe.run.seed)
    hf, tokenizer, _ = load_classifier(recipe.model.name, label_names)
    num_labels = len(label_names) if label_names else 0
    validate = make_validator(recipe, validation, tokenizer, num_labels, device) if validation else None
    if fresh:
        run.path.mkdir(parents=True)
        run.config.write_text(recipe_to_toml(recipe), encoding="utf-8")
        hf.config.save_pretrained(run.model_dir)
        tokenizer.save_pretrained(run.model_dir)
    model = EncoderClassifier(hf, recipe.model.pooling).to(device)
    objective = create(
        recipe.objective, model=model, num_labels=num_labels, num_train_examples=len(train)
    ).to(device)
    train_data = encode(train, tokenizer, recipe.model.max_length)
    if train_data.truncated:
        stderr.print(f"{train_data.truncated} of {len(train)} training examples are longer than "
                     f"model.max_length = {recipe.model.max_length} tokens and were truncated")
    return Trainer(recipe, run, model, objective, train_data, validate, device)


def start_training(recipe: Recipe, overwrite: bool = False) -> dict:
    run = run_folder_for(recipe)
    if run.path.exists():
        if not overwrite:
            raise BadInput(
                f"run folder {run.path} already exists: resume it (--resume {run.path}), "
                "pass --overwrite to replace it, or set run.name"
            )
        stderr.print(f"removing the previous run {run.path} (--overwrite)")
        shutil.rmtree(run.path)
    trainer = _build(recipe, run, fresh=True)
    return trainer.fit()


def resume_training(path: str | Path) -> dict:
    run = RunFolder(path)
    if not RunFolder.is_run(path):
        raise BadInput(f"cannot resume {path}: not a run folder (no config.toml and model/)")
    status = run.read_report().get("status")
    if status == "completed":
        raise BadInput(f"run {path} already completed; nothing to resume")
    recipe = load_recipe(run.config)
    trainer = _build(recipe, run, fresh=False)
    last = latest_checkpoint(run.checkpoints)
    if last is not None:
        trainer.restore(last)
        stderr.print(f"resuming {path} from {last.name}")
    else:
        run.truncate_metrics(0)
        stderr.print(f"{path} has no checkpoint yet: starting it from step 0")
    return trainer.fit()
