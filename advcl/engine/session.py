"""Start or resume a training run: recipe -> data + model -> engine -> run folder."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import torch

from advcl.config.recipe import check_model_positions, check_readout, load_recipe, recipe_to_toml
from advcl.config.schema import Recipe
from advcl.data.adversarial_rows import describe, keep_statuses
from advcl.data.batching import encode
from advcl.data.catalogue import load_data
from advcl.data.class_sampling import describe as describe_class_sampling, sample_per_class
from advcl.data.dataset import Columns
from advcl.runs.checkpoints import CorruptCheckpoint, list_checkpoints, remove_orphans, set_aside
from advcl.config.validate import RecipeError
from advcl.runtime.devices import check_precision, pick_device, seed_everything
from advcl.runtime.distributed import barrier, init_process_group, launched_topology
from advcl.runtime.progress import stderr
from advcl.engine.trainer import Trainer
from advcl.engine.validation import make_validator
from advcl.errors import BadInput
from advcl.interrupts import raising_keyboard_interrupt
from advcl.modeling.encoder import EncoderClassifier, classifier_pooling
from advcl.objectives.base import create
from advcl.plugins import registry
from advcl.runs import RunFolder
from advcl.runs.start_from import load_start_model


def run_folder_for(recipe: Recipe) -> RunFolder:
    return RunFolder(Path(recipe.run.output_dir) / recipe.run.name)


def _device_and_processes(recipe: Recipe):
    """The device of this process, after joining the process group when launched by torchrun."""
    topology = launched_topology()
    device = pick_device(recipe.run.device)
    if device.type == "cuda" and topology.distributed:
        device = torch.device("cuda", topology.local_rank)
    check_precision(device, recipe.run.precision)
    init_process_group(topology, device)
    return device, topology


def _fix_accumulation(recipe: Recipe, processes: int) -> None:
    """Derive gradient accumulation from ``train.global_batch_size`` when it is set."""
    t = recipe.train
    if not t.global_batch_size:
        return
    per_pass = t.batch_size * processes
    if t.global_batch_size % per_pass:
        raise RecipeError(
            f"'train.global_batch_size' = {t.global_batch_size} does not divide into {processes} process(es) "
            f"x train.batch_size {t.batch_size}"
        )
    t.grad_accum_steps = t.global_batch_size // per_pass


def _build(recipe: Recipe, run: RunFolder, fresh: bool, device, topology) -> Trainer:
    """Everything up to the first step; the same calls in the same order for a fresh and a resumed run."""
    _fix_accumulation(recipe, topology.world_size)
    seed_everything(recipe.run.seed + topology.rank, recipe.run.deterministic)
    d = recipe.data
    objective_cls = registry().get("objective", recipe.objective.name).cls
    columns = Columns(d.text_column, d.text_pair_column, d.label_column)
    train_columns = columns
    if objective_cls.needs_adversarial_text:  # the validation split is clean text only
        pair = d.adv_text_pair_column if d.text_pair_column else ""
        train_columns = replace(columns, adv_text=d.adv_text_column, adv_text_pair=pair, adv_status=d.adv_status_column)
    train, adversarial_rows = load_data(d.train, train_columns, d.labels or None, "data.labels"), None
    if objective_cls.needs_adversarial_text:  # D_adv: the rows whose attack status is in data.adv_statuses
        train, adversarial_rows = keep_statuses(train, d.adv_statuses)
    train = train.sample(d.max_train_examples, recipe.run.seed)
    train, class_sampling = sample_per_class(train, d.examples_per_class, recipe.run.seed)
    if len(train) < topology.world_size:
        raise BadInput(f"{topology.world_size} processes but only {len(train)} training examples")
    needs_labels = objective_cls.needs_labels
    if needs_labels and not train.has_class_labels:
        raise BadInput(f"objective '{recipe.objective.name}' needs labelled classification data; {d.train} is {train.task}")
    label_names = train.label_names if needs_labels else None
    validation = None
    if d.validation:
        validation = load_data(d.validation, columns, label_names, "the training data")
        validation = validation.sample(d.max_eval_examples, recipe.run.seed)
    hf, tokenizer, loaded = load_start_model(recipe.model.name, label_names, resumed=None if fresh else run)
    check_model_positions(recipe.model, hf.config)
    num_labels = len(label_names) if label_names else 0
    validate = make_validator(recipe, validation, tokenizer, num_labels, device) if validation else None
    if topology.is_main and (fresh or not run.model_dir.is_dir()):  # all checked: the run folder appears whole
        run.write_run_folder(recipe_to_toml(recipe), hf.config, tokenizer, replace=fresh)
    barrier()
    if fresh and topology.is_main and RunFolder.is_run(recipe.model.name):  # which checkpoint it started from
        run.record({"started_from": loaded})
    if adversarial_rows is not None and topology.is_main:
        run.record({"adversarial_rows": adversarial_rows})
        stderr.print(describe(adversarial_rows))
    if class_sampling is not None and topology.is_main:
        run.record({"class_sampling": class_sampling})
        stderr.print(describe_class_sampling(class_sampling), markup=False, highlight=False, soft_wrap=True)
    model = EncoderClassifier(hf, recipe.model.pooling, classifier_pooling(recipe)).to(device)
    objective = create(
        recipe.objective, model=model, num_labels=num_labels, num_train_examples=len(train)
    ).to(device)
    train_data = encode(train, tokenizer, recipe.model.max_length)
    if train_data.truncated and topology.is_main:
        stderr.print(f"{train_data.truncated} of {len(train)} training examples are longer than "
                     f"model.max_length = {recipe.model.max_length} tokens and were truncated")
    return Trainer(recipe, run, model, objective, train_data, validate, device)


def _recover_interrupted_replace(run: RunFolder) -> None:
    """Undo a killed --overwrite beside ``run`` (main process only), saying what was done."""
    for line in run.recover_interrupted_replace():
        stderr.print(line, highlight=False, soft_wrap=True)


def start_training(recipe: Recipe, overwrite: bool = False) -> dict:
    check_readout(recipe)  # a new run only: stored run folders keep the readout they were trained with
    run = run_folder_for(recipe)
    device, topology = _device_and_processes(recipe)
    if topology.is_main:
        _recover_interrupted_replace(run)
    barrier()  # every process looks at the folder once it is settled
    exists = run.path.exists() or run.path.is_symlink()
    barrier()  # every process has looked before the first one creates anything
    if exists:
        run.check_replaceable(overwrite)
    # --overwrite: the previous run is renamed aside when the new one is written, deleted once it can start, and
    # put back on any failure before that, Ctrl-C included (which here raises instead of ending the process)
    try:
        with raising_keyboard_interrupt():
            trainer = _build(recipe, run, True, device, topology)
    except BaseException:
        run.restore_replaced()
        raise
    if run.replaced is not None:
        stderr.print(f"removed the previous run {run.path} (--overwrite)")
        run.discard_replaced()
    return trainer.fit()


def resume_training(path: str | Path) -> dict:
    run = RunFolder(path)
    if launched_topology().is_main:  # before the process group exists: the folder is looked at after this
        _recover_interrupted_replace(run)
    if not run.config.is_file():  # a folder with config.toml alone was stopped before model/: _build adds it
        raise BadInput(f"cannot resume {path}: not a run folder (no config.toml)")
    status = run.read_report().get("status")
    if status == "completed":
        raise BadInput(f"run {path} already completed; nothing to resume")
    recipe = load_recipe(run.config)
    device, topology = _device_and_processes(recipe)
    trainer = _build(recipe, run, False, device, topology)
    if topology.is_main and remove_orphans(run.checkpoints):
        stderr.print(f"removed the temporary folders of an interrupted checkpoint save in {run.checkpoints}")
    barrier()
    last = restore_newest_valid(trainer, run, topology.is_main)
    if last is not None:
        if topology.is_main:
            stderr.print(f"resuming {path} from {last.name}")
    elif topology.is_main:
        run.truncate_metrics(0)
        stderr.print(f"{path} has no checkpoint yet: starting it from step 0")
    return trainer.fit()


def restore_newest_valid(trainer: Trainer, run: RunFolder, is_main: bool) -> Path | None:
    """Restore the newest checkpoint that reads and fits; newer corrupt ones are renamed aside (and said so).
    None when there is no checkpoint; every checkpoint corrupt is bad input (exit 2), not a silent restart."""
    found = list_checkpoints(run.checkpoints)
    problems = []
    for folder in reversed(found):
        try:
            trainer.restore(folder)
        except CorruptCheckpoint as exc:
            problems.append(str(exc))
            continue
        if is_main:
            for problem, newer in zip(problems, reversed(found)):
                stderr.print(f"checkpoint {newer.name} is corrupt ({problem}); moved to "
                             f"{set_aside(newer).name}, falling back to {folder.name}", highlight=False, soft_wrap=True)
        return folder
    if problems:
        raise BadInput(f"no checkpoint of {run.path} can be resumed: {problems[0]}")
    return None
