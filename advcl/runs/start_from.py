"""The model a training run starts from: ``model.name`` names a model folder, a packaged encoder or a hub id
(:func:`advcl.modeling.loading.load_classifier`), or an earlier advcl run folder.

From a finished run folder, the new run takes the encoder of the checkpoint ``advcl eval`` would read (the best
one, else the last) and a new classification head sized for its own labels: a classifier fine-tuned from a
sentence encoder advcl trained, as RobustSentEmbed (Rafiei Asl et al., §4.1, Table 1) fine-tunes its embeddings
and attacks the classifier. The run's config.json gives the architecture and dropout, its ``model/`` folder the
tokenizer.
"""

from __future__ import annotations

from advcl.errors import BadInput
from advcl.runs import RunFolder
from advcl.runs.checkpoints import latest_checkpoint, read_tensors


def load_start_model(name: str, label_names: list[str] | None = None, resumed: RunFolder | None = None):
    """(hf sequence-classification model, tokenizer, what was loaded) for ``model.name``. A ``resumed`` run that
    started from a run folder and has a checkpoint is rebuilt from its own ``model/`` (the checkpoint holds every
    weight): the source run may have moved or changed since."""
    from advcl.modeling.loading import load_classifier

    if resumed is not None and resumed.read_report().get("started_from") and latest_checkpoint(resumed.checkpoints):
        return (*resumed.untrained_model(), str(resumed.path))
    if not RunFolder.is_run(name):
        return load_classifier(name, label_names)
    return _encoder_of_run(RunFolder(name), label_names)


def _encoder_of_run(run: RunFolder, label_names: list[str] | None):
    status = run.read_report().get("status")
    if status != "completed":  # a run still training, stopped or failed would give a half-trained encoder
        raise BadInput(f"run {run.path} has not finished training (status: {status or 'no report.json'}): "
                       f"resume it (advcl train --resume {run.path}) or start from a finished run")
    if latest_checkpoint(run.checkpoints) is None:
        raise BadInput(f"run {run.path} has no checkpoint to start from (its checkpoints/ folder is empty or gone)")
    folder = run.checkpoint("best")
    config = run.model_config()
    if label_names:
        config.num_labels = len(label_names)
        config.id2label = dict(enumerate(label_names))
        config.label2id = {n: i for i, n in enumerate(label_names)}
        config.problem_type = None
    hf, tokenizer = run.untrained_model(config)
    prefix = f"{hf.base_model_prefix}."
    weights = folder / "model.safetensors"
    encoder = {k: v for k, v in read_tensors(weights).items() if k.startswith(prefix)}
    try:
        missing, unexpected = hf.load_state_dict(encoder, strict=False)
    except RuntimeError as exc:
        reason = str(exc).strip().splitlines()[0]
        raise BadInput(f"{weights} does not fit the model in {run.model_dir} ({reason})") from None
    misfits = [k for k in missing if k.startswith(prefix)] + unexpected  # unexpected: all under the prefix
    if misfits or not encoder:
        raise BadInput(f"{weights} does not fit the model in {run.model_dir} "
                       f"({'no encoder weights' if not encoder else f'{misfits[0]} missing or unexpected'})")
    return hf, tokenizer, str(folder)
