from __future__ import annotations

from pathlib import Path

import typer

from advcl.cli.app import JSON_OPTION, app, print_json
from advcl.engine.progress import stderr


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
    fmt: str = typer.Option("hf", "--format", "-f", help="hf, sentence-transformers or onnx.", autocompletion=_formats),
    checkpoint: str = typer.Option("best", help="Which checkpoint of a run folder: best or last."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing output folder."),
    as_json: bool = JSON_OPTION,
):
    """Write the encoder and its classifier as a Hugging Face folder, a sentence-transformers folder (with
    the run's pooling) or an ONNX graph (outputs: logits and the pooled sentence embedding).

    What the training objective kept besides them (projection heads, memory banks) is not exported; the
    command says when it leaves something out.
    """
    from advcl.errors import BadInput
    from advcl.export import export_model

    if checkpoint not in ("best", "last"):
        raise BadInput(f"--checkpoint must be best or last, got {checkpoint!r}")
    result = export_model(model, output, fmt, checkpoint, overwrite)
    if result["left_out"]:
        stderr.print(f"note: exported the encoder and classifier only; the objective's own "
                     f"{', '.join(result['left_out'])} stay in the run folder", highlight=False, soft_wrap=True)
    if as_json:
        print_json(result)
    else:
        stderr.print(f"exported {result['source']} to {output} ({fmt}, {result['pooling']} pooling)", soft_wrap=True)
