from __future__ import annotations

from pathlib import Path

import typer

from advcl.cli.app import JSON_OPTION, app, print_json
from advcl.engine.progress import stderr


@app.command(
    epilog="Examples:\n\n"
    "  advcl export --model runs/vanilla_sst2 --output exported/vanilla_sst2\n\n"
    "  advcl export --model runs/vanilla_sst2 --output exported/last --checkpoint last --overwrite\n\n"
    "Load it anywhere: AutoModelForSequenceClassification.from_pretrained('exported/vanilla_sst2')"
)
def export(
    model: str = typer.Option(..., "--model", "-m", help="Run folder (or model folder) to export."),
    output: Path = typer.Option(..., "--output", "-o", help="Folder to write."),
    checkpoint: str = typer.Option("best", help="Which checkpoint of a run folder: best or last."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing output folder."),
    as_json: bool = JSON_OPTION,
):
    """Write a Hugging Face folder (safetensors + config + tokenizer) that plain transformers loads."""
    from advcl.errors import BadInput
    from advcl.export import export_hf

    if checkpoint not in ("best", "last"):
        raise BadInput(f"--checkpoint must be best or last, got {checkpoint!r}")
    result = export_hf(model, output, checkpoint, overwrite)
    if as_json:
        print_json(result)
    else:
        stderr.print(f"exported {result['source']} to {output}")
