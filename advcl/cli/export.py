from __future__ import annotations

from pathlib import Path

import typer

from advcl.cli.app import CHECKPOINT_OPTION, JSON_OPTION, app, print_json
from advcl.runtime.progress import stderr


EXPORT_MARKERS = ("config.json", "model.onnx")  # what every export format writes at its top level


def check_export_target(source: Path, output: Path, overwrite: bool) -> None:
    """Refuse an --output that would write over a run folder, over the model being exported or a folder holding
    it, or (with --overwrite) over a folder that is not an earlier export: --overwrite replaces an export only."""
    from advcl.errors import BadInput
    from advcl.runs import refuse_run_folder

    target, origin = output.resolve(), source.resolve()
    if target == origin or origin.is_relative_to(target):
        raise BadInput(f"--output {output} holds the model being exported ({source}); choose another folder")
    refuse_run_folder(output)
    replaced = output.is_file() or (output.is_dir() and any(output.iterdir()))
    if replaced and overwrite and not any((output / marker).is_file() for marker in EXPORT_MARKERS):
        raise BadInput(f"--overwrite replaces only an earlier export (a folder with {' or '.join(EXPORT_MARKERS)}); "
                       f"{output} is not one, so it is left alone")


def _formats(incomplete: str) -> list[str]:
    from advcl.export import FORMATS

    return [f for f in FORMATS if f.startswith(incomplete)]


@app.command(
    epilog="Examples:\n\n"
    "  advcl export --model runs/vanilla_sst2 --output exported/vanilla_sst2\n\n"
    "  advcl export --model runs/vanilla_sst2 --output exported/st --format sentence-transformers\n\n"
    "  advcl export --model runs/vanilla_sst2 --output exported/onnx --format onnx --json\n\n"
    "  advcl export --model runs/vanilla_sst2 --output exported/last --checkpoint last --overwrite\n\n"
    "Load it anywhere: AutoModelForSequenceClassification.from_pretrained('exported/vanilla_sst2'), "
    "SentenceTransformer('exported/st'), onnxruntime.InferenceSession('exported/onnx/model.onnx')"
)
def export(
    model: str = typer.Option(..., "--model", "-m", help="Run folder (or model folder) to export."),
    output: Path = typer.Option(..., "--output", "-o", help="Folder to write."),
    fmt: str = typer.Option("hf", "--format", "-f", autocompletion=_formats,
                            help='hf, sentence-transformers or onnx (model.classifier_input = "sentence": onnx only).'),
    checkpoint: str = CHECKPOINT_OPTION,
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing output folder."),
    as_json: bool = JSON_OPTION,
):
    """Write the encoder and its classifier as a Hugging Face folder, a sentence-transformers folder (with
    the run's pooling) or an ONNX graph (outputs: logits and the pooled sentence embedding).

    What the training objective kept besides them (projection heads, memory banks) is not exported; the
    command says when it leaves something out. A run whose classifier reads the pooled sentence vector
    (model.classifier_input = "sentence": the shipped SCAL, CAT, CARL, TaiChi and ADA recipes) exports as onnx
    only, with the same logits; hf and sentence-transformers folders cannot hold that classifier.
    """
    from advcl.export import export_model

    check_export_target(Path(model), output, overwrite)
    result = export_model(model, output, fmt, checkpoint, overwrite)
    if result["left_out"]:
        stderr.print(f"note: exported the encoder and classifier only; what the objective trained besides them "
                     f"({', '.join(result['left_out'])}) stays in the run folder", highlight=False, soft_wrap=True)
    if as_json:
        print_json(result)
    else:
        stderr.print(f"exported {result['source']} to {output} ({fmt}, {result['pooling']} pooling, inputs cut at "
                     f"{result['max_length']} tokens)", soft_wrap=True)
