"""AdvSTS: text attacks on sentence-embedding similarity (Rafiei Asl et al. 2024, "RobustSentEmbed", §4.2, Table 2).

A TextAttack recipe (TextFooler, PWWS, ...) perturbs an STS pair, either sentence or both, so that the similarity
score the target sentence-embedding model predicts moves as far as it can from the gold score. ``advcl attack``
runs AdvSTS whenever ``--data`` is an STS split (task ``sts`` in the catalogue: ``stsb:test``, ``sts12:test``...);
the rest of the machinery (seeded sample, batched victim, resumable JSONL, shards, TextAttack's summary) is the one
classification attacks use, and :mod:`advcl.attacks.goals` assembles this module's parts. Definitions:

- **Victim**: the model's sentence embedding, pooled as ``advcl eval --suite sts`` pools it (the run's pooling, or
  the encoder's packaged one); a classifier's head is not used (:class:`advcl.attacks.victim.SentenceVictim`).
- **Predicted score**: the cosine ``c`` of the two embeddings mapped onto the score range ``[low, high]`` that the
  dataset's meta.json declares, ``low + (high - low) * max(c, 0)`` (:class:`ScoreScale`). This is the convention
  under which cosine-similarity models are regressed on STS (Sentence-BERT's CosineSimilarityLoss trains the cosine
  towards ``score / 5``): cosine 1 is the top of the scale, cosine 0 (unrelated) the bottom, and the rare negative
  cosines are clamped to the bottom. Mapping [-1, 1] instead would put every unrelated pair (cosine ~0) at mid-scale,
  off by half the range from its gold score before any attack.
- **Goal** (:class:`advcl.attacks.deviation.SimilarityDeviation`): the deviation ``|predicted - gold|``; the attack
  succeeds once it reaches the margin (``--sts-margin``), default 20 % of the declared range (1.0 on STS-B's 0-5,
  0.8 on SICK-R's 1-5): one full step of the six-level STS annotation scale, where each level has its own meaning
  ("4: mostly equivalent", "3: roughly equivalent"...), so a deviation that large changes what the model says about
  the pair. Pairs already off by the margin before the attack are skipped, like misclassified examples.
- **Summary**: TextAttack's keys with AdvSTS meanings: original accuracy = share of pairs within the margin,
  accuracy under attack = share still within it afterwards, attack success rate = successful / attacked pairs;
  plus the Spearman x 100 between the cosines and the gold scores of the sample before and after the attack
  (before, on the whole split, it is ``advcl eval --suite sts``'s number).
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

from advcl.attacks.tasks import STATUS, Target
from advcl.data.dataset import TextDataset
from advcl.errors import BadInput

# The two columns of an AdvSTS pair for TextAttack. Not premise/hypothesis: recipes such as TextFooler keep the
# premise of an entailment pair fixed (InputColumnModification), and an STS pair has no premise: both sentences
# may be perturbed.
STS_COLUMNS = ("sentence1", "sentence2")
DEFAULT_MARGIN_FRACTION = 0.2
TOLERANCE = 1e-9  # a deviation this close below the margin reaches it (5 x 0.14 vs 1.7: 0.9999999999999999)
MAPPING = "low + (high - low) * max(cosine, 0)"


@dataclass(frozen=True)
class ScoreScale:
    """The declared gold-score range, and the predicted score of a cosine on it."""

    low: float
    high: float

    @property
    def width(self) -> float:
        return self.high - self.low

    def predict(self, cosine: float) -> float:
        """``low + (high - low) * max(cosine, 0)``: cosine 1 → high, cosine ≤ 0 → low."""
        return self.low + self.width * max(float(cosine), 0.0)

    def default_margin(self) -> float:
        return DEFAULT_MARGIN_FRACTION * self.width


def score_scale(spec: str) -> ScoreScale:
    """The range the split's meta.json declares (``score_range``, else ``hub.score_range``)."""
    from advcl.data.catalogue import declared_score_range, meta_for, parse_spec

    name = parse_spec(spec)[0]
    declared = declared_score_range(meta_for(name) or {}, name)
    if declared is None:
        raise BadInput(f"{spec} declares no score range (score_range in {name}'s meta.json, like [0, 5]): "
                       "AdvSTS maps cosines onto it")
    if not declared.high > declared.low:
        raise BadInput(f"{spec}: the declared score range [{declared.low:g}, {declared.high:g}] is empty")
    return ScoreScale(declared.low, declared.high)


def load(request) -> Target:
    """Any encoder (its sentence embedding is the victim, no classifier head needed) and a seeded sample of the
    STS split; the margin and the declared score range join the attack's settings."""
    from advcl.data.catalogue import load_data
    from advcl.runs import load_model

    if not request.advsts:
        raise BadInput(f"{request.data} is an STS split (pairs with similarity scores): AdvSTS runs in `advcl attack`, "
                       "whose results.jsonl holds the perturbed pairs")
    scale = score_scale(request.data)
    margin = check_margin(request.sts_margin, scale)
    loaded = load_model(request.model, request.checkpoint)
    sample = load_data(request.data).sample(request.num_examples, request.seed)
    check_sample(request.data, sample)
    return Target(loaded, sample, {"sts_margin": margin, "sts_score_range": [scale.low, scale.high]})


def check_margin(margin: float | None, scale: ScoreScale) -> float:
    """``--sts-margin``, or 20 % of the range; it must lie in (0, high - low]."""
    if margin is None:
        return scale.default_margin()
    if not 0 < margin <= scale.width:
        raise BadInput(f"--sts-margin must be above 0 and at most the score range's width {scale.width:g} "
                       f"([{scale.low:g}, {scale.high:g}]), got {margin:g}")
    return float(margin)


def check_sample(data: str, dataset: TextDataset) -> None:
    if dataset.pairs is None:
        raise BadInput(f"{data}: AdvSTS needs sentence pairs, this dataset has single texts")
    if len(dataset) < 2:
        raise BadInput(f"{data}: AdvSTS needs at least 2 pairs (the summary's Spearman correlation), "
                       f"the sample has {len(dataset)}")


def example_input(dataset: TextDataset, i: int) -> OrderedDict:
    return OrderedDict(zip(STS_COLUMNS, (dataset.texts[i], dataset.pairs[i])))


def ground_truth(score: float) -> str:
    """TextAttack's ``Attack.attack`` takes an int or a str as the ground truth: the gold score as its shortest
    round-tripping text, which the goal function reads back with ``float``."""
    return repr(float(score))


def result_row(position: int, gold: float, result, seconds: float) -> dict:
    """One JSON line: both texts before and after, the gold score, the predicted scores and cosines before and
    after, status, queries and words (of both sentences) perturbed."""
    original = result.original_result.attacked_text
    perturbed = result.perturbed_result.attacked_text
    status = STATUS[type(result).__name__]
    first, second = original.tokenizer_input
    new_first, new_second = perturbed.tokenizer_input
    return {"index": position, "status": status, "gold_score": float(gold),
            "original_score": float(result.original_result.output),
            "perturbed_score": float(result.perturbed_result.output),
            "original_cosine": float(result.original_result.raw_output),
            "perturbed_cosine": float(result.perturbed_result.raw_output),
            "queries": 0 if status == "skipped" else int(result.perturbed_result.num_queries),
            "words": len(original.words),
            "words_perturbed": 0 if status == "skipped" else len(original.all_words_diff(perturbed)),
            "seconds": round(seconds, 3),
            "original_text": first, "original_text_pair": second,
            "perturbed_text": new_first, "perturbed_text_pair": new_second}


def spearman_summary(rows: list[dict]) -> dict:
    """Spearman x 100 of the cosines with the gold scores, before and after the attack (a skipped pair keeps its
    cosine); None for fewer than 2 rows (a shard of one)."""
    from advcl.evaluation.sts import spearman

    if len(rows) < 2:
        return {"spearman_before": None, "spearman_after": None}
    gold = [r["gold_score"] for r in rows]
    return {"spearman_before": round(100 * spearman([r["original_cosine"] for r in rows], gold), 2),
            "spearman_after": round(100 * spearman([r["perturbed_cosine"] for r in rows], gold), 2)}


SUMMARY_LABELS = (
    ("original_accuracy", "Pairs within the margin (%)"),
    ("accuracy_under_attack", "Pairs within the margin under attack (%)"),
    ("attack_success_rate", "Attack success rate (%)"),
    ("avg_perturbed_word_percent", "Average perturbed word %"),
    ("avg_words_per_input", "Average num. words per pair"),
    ("avg_queries", "Avg num queries"),
    ("spearman_before", "Spearman x100 before the attack"),
    ("spearman_after", "Spearman x100 under attack"),
    ("successful_attacks", "Successful attacks"),
    ("failed_attacks", "Failed attacks"),
    ("skipped_attacks", "Skipped attacks (off by the margin already)"),
    ("examples", "Pairs"),
)


def settings_note(options: dict) -> str:
    """The margin and the score range the title of ``advcl attack``'s table states."""
    low, high = options["sts_score_range"]
    return f" (margin {options['sts_margin']:g} on [{low:g}, {high:g}])"
