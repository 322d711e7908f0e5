from __future__ import annotations

from pathlib import Path

import typer

from advcl.cli.app import CHECKPOINT_OPTION, JSON_OPTION, app, print_json
from advcl.runtime.progress import stderr


@app.command(
    epilog="Examples:\n\n"
    "  advcl embed --model runs/simcse --input sentences.txt --output emb.npy\n\n"
    "  advcl embed --model runs/vanilla_sst2 --input s.txt --output emb.safetensors --pooling mean\n\n"
    "  advcl embed --model all-MiniLM-L6-v2 --input s.txt --output emb.jsonl --normalize"
)
def embed(
    model: str = typer.Option(..., "--model", "-m", help="Run folder, model folder or hub name."),
    input: Path = typer.Option(..., "--input", "-i", help="Text file, one sentence per line."),
    output: Path = typer.Option(..., "--output", "-o", help="Output file: .npy, .safetensors or .jsonl."),
    pooling: str = typer.Option(None, help="cls or mean (default: the run's pooling)."),
    checkpoint: str = CHECKPOINT_OPTION,
    batch_size: int = typer.Option(128, min=1),
    normalize: bool = typer.Option(False, help="L2-normalise each embedding."),
    device: str = typer.Option("auto", help="auto, cpu or cuda."),
    as_json: bool = JSON_OPTION,
):
    """Write one sentence embedding per input line."""
    from advcl.embedding import check_output_path, embed_texts, read_lines, write_embeddings
    from advcl.runtime.devices import pick_device
    from advcl.runtime.progress import simple_progress
    from advcl.errors import BadInput
    from advcl.modeling.pooling import POOLINGS
    from advcl.runs import load_model

    if pooling is not None and pooling not in POOLINGS:
        raise BadInput(f"--pooling must be one of {', '.join(POOLINGS)}, got {pooling!r}")
    check_output_path(output)
    texts = read_lines(input)
    loaded = load_model(model, checkpoint, pooling=pooling)
    dev = pick_device(device)
    loaded.model.to(dev)
    with simple_progress("embedding") as progress:
        vectors = embed_texts(loaded.model, loaded.tokenizer, texts, loaded.max_length, batch_size, dev, normalize, progress)
    write_embeddings(output, texts, vectors)
    result = {"output": str(output), "count": vectors.shape[0], "dim": vectors.shape[1], "pooling": loaded.pooling}
    if as_json:
        print_json(result)
    else:
        stderr.print(f"wrote {result['count']} embeddings of dimension {result['dim']} ({loaded.pooling} pooling) to {output}")
