"""``advcl embed`` against sentence-transformers' ``encode`` on the same texts and model (issue 13); prints one JSON object.

    python bench/embed_vs_st.py [--rounds 3] [--sentences 5000] [--source sentences] [--seed 0] [--threads 2]
                                [--batch-size 32] [--out FILE]

The job: all-MiniLM-L6-v2 (mean pooling, L2-normalised, as its sentence-transformers folder declares), a fixed
seeded sample of ``--sentences`` lines from ``--source`` (``sentences``: the shipped sentence corpus,
$ADVCL_DATA_DIR/sentences/train.jsonl; ``sst2``: SST-2 training sentences), batch ``--batch-size`` (32,
sentence-transformers' default) and the same maximum length for both (advcl's, set on sentence-transformers'
``max_seq_length``), ``--threads`` torch threads, CPU. Every round runs, each in a fresh process, the order
rotating from round to round so a neighbour's load on a shared machine falls on all of them alike:

- ``advcl``: :func:`advcl.runs.load_model` (``load_s``, after importing transformers, as for ``st``), :func:`advcl.embedding.embed_texts` (``encode_s``:
  tokenisation, batching, forward, pooling, normalisation) and :func:`advcl.embedding.write_embeddings` to .npy
  (``write_s``);
- ``st``: ``SentenceTransformer(folder)`` (``load_s``) and ``encode(texts, batch_size, normalize_embeddings=True)``
  (``encode_s``: its own tokenisation, length sorting, forward, pooling and normalisation);
- ``cli``: the command a user types, ``advcl embed --model all-MiniLM-L6-v2 --input texts.txt --output e.npy
  --batch-size B --normalize``, timed from outside (``wall_s``: interpreter start, imports, model load, encoding
  and the written file).

``process_s`` is each worker's wall time seen from outside. The vectors of the three are compared (max absolute
difference, lowest cosine; the target is cosine ≥ 0.9999). ``ratio`` = st encode_s / advcl encode_s per round
(> 1: advcl faster); the summary gives medians. Target (issue 13): advcl at least as fast as ``encode``.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench_output import emit, machine  # a sibling module: bench/ is on sys.path when run as a script

MODEL = "all-MiniLM-L6-v2"
TOOLS = ("advcl", "st", "cli")


def sample_texts(source: str, count: int, seed: int) -> list[str]:
    """A seeded sample of single-line, non-empty sentences (the input format ``advcl embed`` reads)."""
    data_dir = Path(os.environ.get("ADVCL_DATA_DIR", "data"))
    if source == "sentences":
        rows = [json.loads(line)["text"] for line in (data_dir / "sentences" / "train.jsonl").open(encoding="utf-8")]
    else:
        from advcl.data.catalogue import load_data

        rows = load_data("sst2:train").texts
    rows = [t for t in dict.fromkeys(rows) if t.strip() and t.splitlines() == [t]]
    if count > len(rows):
        raise SystemExit(f"--sentences {count}: {source} has only {len(rows)} usable sentences")
    return random.Random(seed).sample(rows, count)


def advcl_max_length() -> int:
    """The maximum length ``advcl embed`` uses for the model (what sentence-transformers is set to)."""
    from advcl.runs import load_model

    return load_model(MODEL).max_length


def run_advcl(texts: list[str], batch_size: int, folder: Path) -> dict:
    import torch
    # imported before the clock, as run_st imports sentence_transformers (and with it transformers) before its own
    from transformers import AutoModelForSequenceClassification  # noqa: F401

    from advcl.embedding import embed_texts, write_embeddings
    from advcl.runs import load_model

    started = time.perf_counter()
    loaded = load_model(MODEL)
    load_s = time.perf_counter() - started
    started = time.perf_counter()
    vectors = embed_texts(loaded.model, loaded.tokenizer, texts, loaded.max_length, batch_size, torch.device("cpu"), True)
    encode_s = time.perf_counter() - started
    started = time.perf_counter()
    write_embeddings(folder / "advcl.npy", texts, vectors)
    return {"load_s": load_s, "encode_s": encode_s, "write_s": time.perf_counter() - started,
            "max_length": loaded.max_length, "pooling": loaded.pooling}


def run_st(texts: list[str], batch_size: int, max_length: int, folder: Path) -> dict:
    import numpy as np
    from sentence_transformers import SentenceTransformer

    from advcl.modeling.loading import resolve_model_path

    started = time.perf_counter()
    model = SentenceTransformer(resolve_model_path(MODEL), device="cpu")
    model.max_seq_length = max_length
    load_s = time.perf_counter() - started
    started = time.perf_counter()
    vectors = model.encode(texts, batch_size=batch_size, normalize_embeddings=True, convert_to_numpy=True)
    encode_s = time.perf_counter() - started
    np.save(folder / "st.npy", vectors)  # for the comparison, untimed
    return {"load_s": load_s, "encode_s": encode_s, "max_length": model.max_seq_length}


def worker(tool: str, texts_file: Path, batch_size: int, max_length: int, threads: int) -> dict:
    import torch

    torch.set_num_threads(threads)
    texts = texts_file.read_text(encoding="utf-8").splitlines()
    if tool == "advcl":
        out = run_advcl(texts, batch_size, texts_file.parent)
    else:
        out = run_st(texts, batch_size, max_length, texts_file.parent)
    out["sentences_per_s"] = len(texts) / out["encode_s"]
    return {k: round(v, 4) if isinstance(v, float) else v for k, v in out.items()}


def environment(threads: int) -> dict:
    return {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads),
            "TOKENIZERS_PARALLELISM": "false", "HF_HUB_OFFLINE": "1", "TRANSFORMERS_VERBOSITY": "error"}


def spawn(tool: str, texts_file: Path, args, max_length: int) -> dict:
    if tool == "cli":
        command = [str(Path(sys.executable).with_name("advcl")), "embed", "--model", MODEL, "--input", str(texts_file),
                   "--output", str(texts_file.parent / "cli.npy"), "--batch-size", str(args.batch_size), "--normalize"]
    else:
        command = [sys.executable, __file__, "--worker", tool, "--texts", str(texts_file), "--batch-size",
                   str(args.batch_size), "--max-length", str(max_length), "--threads", str(args.threads)]
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, env=environment(args.threads))
    wall = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"{tool} failed:\n{done.stderr[-3000:]}")
    out = {"wall_s": round(wall, 4)} if tool == "cli" else json.loads(done.stdout.strip().splitlines()[-1])
    out["process_s"] = round(wall, 4)
    return out


def agreement(folder: Path) -> dict:
    """Max absolute difference and lowest cosine of advcl's and the command's vectors against sentence-transformers'."""
    import numpy as np

    reference = np.load(folder / "st.npy").astype(np.float64)
    out = {}
    for name in ("advcl", "cli"):
        vectors = np.load(folder / f"{name}.npy").astype(np.float64)
        cosine = (vectors * reference).sum(1) / (np.linalg.norm(vectors, axis=1) * np.linalg.norm(reference, axis=1))
        out[name] = {"max_abs_diff": float(np.abs(vectors - reference).max()), "min_cosine": float(cosine.min())}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--sentences", type=int, default=5000)
    parser.add_argument("--source", choices=("sentences", "sst2"), default="sentences")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--out", type=Path, help="also write the JSON here")
    parser.add_argument("--worker", choices=TOOLS[:2], help=argparse.SUPPRESS)
    parser.add_argument("--texts", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--max-length", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(args.worker, args.texts, args.batch_size, args.max_length, args.threads)))
        return
    import sentence_transformers
    import torch
    import transformers

    transformers.logging.set_verbosity_error()  # advcl_max_length's load: the new classifier head is no news here

    host = machine()
    texts = sample_texts(args.source, args.sentences, args.seed)
    max_length = advcl_max_length()
    rounds = []
    with tempfile.TemporaryDirectory(prefix="embed_vs_st_") as tmp:
        texts_file = Path(tmp) / "texts.txt"
        texts_file.write_text("\n".join(texts) + "\n", encoding="utf-8")
        for r in range(args.rounds):
            order = list(TOOLS[r % len(TOOLS):] + TOOLS[: r % len(TOOLS)])
            results = {tool: spawn(tool, texts_file, args, max_length) for tool in order}
            entry = {"round": r, "order": order, "results": results,
                     "ratio": round(results["st"]["encode_s"] / results["advcl"]["encode_s"], 3),
                     "agreement": agreement(Path(tmp))}
            rounds.append(entry)
            print(json.dumps(entry), file=sys.stderr)
    median = lambda tool, key: round(statistics.median(e["results"][tool][key] for e in rounds), 3)  # noqa: E731
    summary = {
        "advcl": {k: median("advcl", k) for k in ("load_s", "encode_s", "write_s", "sentences_per_s", "process_s")},
        "st": {k: median("st", k) for k in ("load_s", "encode_s", "sentences_per_s", "process_s")},
        "cli_wall_s_median": median("cli", "wall_s"),
        "ratio_median": round(statistics.median(e["ratio"] for e in rounds), 3),
        "min_cosine": min(a["min_cosine"] for e in rounds for a in e["agreement"].values()),
        "max_abs_diff": max(a["max_abs_diff"] for e in rounds for a in e["agreement"].values()),
    }
    out = {"job": {"model": MODEL, "source": args.source, "sentences": len(texts), "seed": args.seed,
                   "batch_size": args.batch_size, "max_length": max_length, "pooling": "mean", "normalize": True,
                   "threads": args.threads},
           "machine": host, "torch": torch.__version__, "transformers": transformers.__version__,
           "sentence_transformers": sentence_transformers.__version__, "rounds": rounds, "summary": summary}
    emit(out, args.out)


if __name__ == "__main__":
    main()
