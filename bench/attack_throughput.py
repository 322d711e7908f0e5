"""Attack throughput: advcl's attack path against TextAttack's own API with its padding fixed, same results.

Both sides attack the same victim (a run folder's classifier), with the same recipe, examples and per-example
seeds, and the same stand-ins (MiniLM for the Universal Sentence Encoder, the counter-fitted vectors of
`advcl resources build`). TextAttack's side is its stock ``HuggingFaceModelWrapper`` with the tokenizer's
``model_max_length`` set to ``--max-length`` (it pads every query to that length; left at 512 it is several times
slower still) and its stock ``SBERT`` constraint on MiniLM; advcl's side is what ``advcl attack`` runs
(:mod:`advcl.attacks.session`): the length-sorted, dynamically padded :class:`~advcl.attacks.victim.Victim` and the
caching MiniLM stand-in. Each side first attacks one warm-up example outside the timed set; then the two sides
take turns, example by example, so that a shared machine's changing load weighs on both alike. The perturbed
texts, statuses and query counts of the two sides are compared row by row.

    python bench/attack_throughput.py --model runs/qs6000 --data sst2:validation --num-examples 20

advcl is measured twice: with the victim on PyTorch (``advcl_torch``: padding, batching and caching alone) and as
``advcl attack`` runs by default (``advcl``: on CPU, the victim on onnxruntime). Prints one JSON object: per recipe,
examples/s of each side, the speed-ups over TextAttack, whether all results are identical, and where the time goes
(seconds in the victim, in the sentence encoder, and in the rest).
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import sys
import time
from contextlib import ExitStack, contextmanager
from pathlib import Path

from bench_output import machine  # a sibling module: bench/ is on sys.path when run as a script

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from advcl.attacks import recipes  # noqa: E402
from advcl.attacks.goals import LABEL_FLIP  # noqa: E402
from advcl.attacks.resources import activate, require, resources_dir, sentence_encoder_path  # noqa: E402
from advcl.attacks.runner import attack_rows  # noqa: E402
from advcl.attacks.session import ALL_QUERIES, runtime_for  # noqa: E402
from advcl.attacks.victim import Victim, onnx_session  # noqa: E402
from advcl.data.catalogue import load_data  # noqa: E402
from advcl.runs import load_model  # noqa: E402

RECIPES = {cls.name: cls for cls in (recipes.DeepWordBug, recipes.PWWS, recipes.TextFooler, recipes.TextBugger)}


class Stopwatch:
    seconds = 0.0


@contextmanager
def timing(owner, attribute: str):
    """Add up the seconds spent in ``owner.attribute`` (a method of a class, or of an instance) in the block."""
    original, watch = getattr(owner, attribute), Stopwatch()

    def timed(*args, **kwargs):
        start = time.perf_counter()
        try:
            return original(*args, **kwargs)
        finally:
            watch.seconds += time.perf_counter() - start

    setattr(owner, attribute, timed)
    try:
        yield watch
    finally:
        setattr(owner, attribute, original)


def textattack_side(recipe_cls, loaded, max_length: int):
    """The stock recipe on TextAttack's HuggingFaceModelWrapper (padding capped at max_length) and SBERT."""
    from textattack.constraints.semantics.sentence_encoders import SBERT
    from textattack.models.wrappers import HuggingFaceModelWrapper

    if loaded.model.sentence_classifier is not None:
        raise SystemExit(f"{loaded.source}: its classifier reads the pooled sentence vector "
                         "(model.classifier_input = \"sentence\"), which TextAttack's HuggingFaceModelWrapper "
                         "cannot call; give a run with the architecture's own head")
    loaded.tokenizer.model_max_length = max_length
    wrapper = HuggingFaceModelWrapper(loaded.model.hf, loaded.tokenizer)

    class Stock(recipe_cls):
        """Only what the recipe cannot build without: TextAttack's own SBERT on MiniLM for the USE (with USE's
        default metric), and the homoglyph swap that survives the wheel's missing file (TextBugger)."""

        def replacements(self):
            advcl_ones = super().replacements()
            stock = {}
            if "UniversalSentenceEncoder" in advcl_ones:
                stock["UniversalSentenceEncoder"] = functools.partial(SBERT, model_name=sentence_encoder_path(),
                                                                      metric="angular")
            if "WordSwapHomoglyphSwap" in advcl_ones:
                stock["WordSwapHomoglyphSwap"] = advcl_ones["WordSwapHomoglyphSwap"]
            return stock

    return Stock().build(wrapper), wrapper


def advcl_side(recipe_cls, loaded, max_length: int, batch_size: int, runtime: str):
    log = lambda message: print(message, file=sys.stderr)  # noqa: E731
    session = onnx_session(loaded, resources_dir() / "victims", log) if runtime == "onnx" else None
    victim = Victim(loaded.model, loaded.tokenizer, max_length, batch_size, session=session)
    attack = recipe_cls().build(victim)
    attack.goal_function.batch_size = ALL_QUERIES
    return attack, victim


def encoder_of(attack):
    from textattack.constraints.semantics.sentence_encoders import SentenceEncoder

    return next((c for c in attack.constraints if isinstance(c, SentenceEncoder)), None)


class Side:
    """One side of the comparison: an attack, the class of its victim wrapper, and what it has measured so far."""

    def __init__(self, attack, victim_class):
        self.attack, self.victim_class, self.encoder = attack, victim_class, encoder_of(attack)
        self.rows, self.seconds, self.model_seconds, self.encoder_seconds = [], 0.0, 0.0, 0.0

    def attack_one(self, dataset, position, seed) -> None:
        with ExitStack() as stack:
            model = stack.enter_context(timing(self.victim_class, "__call__"))
            encoder = stack.enter_context(timing(self.encoder, "encode")) if self.encoder else Stopwatch()
            start = time.perf_counter()
            self.rows += attack_rows(self.attack, LABEL_FLIP, dataset, [position], seed)
            self.seconds += time.perf_counter() - start
        self.model_seconds += model.seconds
        self.encoder_seconds += encoder.seconds

    def report(self) -> dict:
        return {"examples_per_s": round(len(self.rows) / self.seconds, 3), "seconds": round(self.seconds, 2),
                "model_seconds": round(self.model_seconds, 2), "encoder_seconds": round(self.encoder_seconds, 2),
                "other_seconds": round(self.seconds - self.model_seconds - self.encoder_seconds, 2),
                "avg_queries": round(sum(r["queries"] for r in self.rows) / len(self.rows), 2)}


def compare(theirs: list[dict], ours: list[dict]) -> list[int]:
    keys = ("status", "perturbed_text", "queries", "perturbed_output")
    return [a["index"] for a, b in zip(theirs, ours) if any(a[k] != b[k] for k in keys)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=str(ROOT / "runs" / "qs6000"))
    parser.add_argument("--data", default="sst2:validation")
    parser.add_argument("--num-examples", type=int, default=20, help="the first N rows of --data")
    parser.add_argument("--recipes", default="deepwordbug,pwws,textfooler")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--max-length", type=int, default=64)
    parser.add_argument("--model-batch-size", type=int, default=32)
    parser.add_argument("--threads", type=int, default=0, help="torch threads for both sides (0: torch's default)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    folder = resources_dir()
    names = args.recipes.split(",")
    for name in names:
        require(folder, RECIPES[name].needs, name)
    activate(folder)
    loaded = load_model(args.model)
    dataset = load_data(args.data, label_names=loaded.label_names).select(range(args.num_examples + 1))
    positions, warmup = list(range(args.num_examples)), args.num_examples
    report = {"model": args.model, "data": f"{args.data}, first {args.num_examples} rows", "seed": args.seed,
              "max_length": args.max_length, "torch_threads": torch.get_num_threads(), "cpus": os.cpu_count(),
              "machine": machine(),
              "advcl_runtime": runtime_for("auto", torch.device("cpu")), "recipes": {}}
    for name in names:
        cls = RECIPES[name]
        stock, wrapper = textattack_side(cls, load_model(args.model), args.max_length)
        sides = {"textattack_padding_fixed": Side(stock, type(wrapper))}
        for key, runtime in (("advcl_torch", "torch"), ("advcl", runtime_for("auto", torch.device("cpu")))):
            ours, victim = advcl_side(cls, load_model(args.model), args.max_length, args.model_batch_size, runtime)
            sides[key] = Side(ours, type(victim))
        for side in sides.values():  # warm-up: lazy loads (WordNet, tagger, encoders) happen here
            list(attack_rows(side.attack, LABEL_FLIP, dataset, [warmup], args.seed))
        for position in positions:  # alternate, so that the machine's load weighs on both sides alike
            for side in sides.values():
                side.attack_one(dataset, position, args.seed)
        theirs = sides["textattack_padding_fixed"]
        differing = sorted({i for key in ("advcl_torch", "advcl") for i in compare(theirs.rows, sides[key].rows)})
        report["recipes"][name] = {
            "attack": recipes.describe(cls()),
            **{key: side.report() for key, side in sides.items()},
            "speedup_torch": round(theirs.seconds / sides["advcl_torch"].seconds, 2),
            "speedup": round(theirs.seconds / sides["advcl"].seconds, 2),
            "identical_results": not differing, "differing_examples": differing,
        }
        print(json.dumps({name: report["recipes"][name]}), file=sys.stderr, flush=True)
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
