"""Alignment and uniformity of sentence embeddings (Wang & Isola 2020, ICML), on L2-normalised embeddings f(x):

    ℓ_align   = E_{(x, x⁺) ~ p_pos} ‖f(x) − f(x⁺)‖²
    ℓ_uniform = log E_{x, y ~ p_data, i.i.d.} exp(−2 ‖f(x) − f(y)‖²)

Lower is better for both. As in SimCSE (Gao et al. 2021, §5) and RobustSentEmbed (Rafiei Asl et al. 2024,
§4.5, Figure 3), p_pos is the STS-B pairs with a gold score of at least 4 and p_data the distinct sentences of the
same split; ℓ_uniform averages over every pair of distinct positions (Wang & Isola's ``torch.pdist``), computed
as a log-sum-exp. :func:`plot_alignment_uniformity` places several runs on the ℓ_align–ℓ_uniform plane.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path

import torch

from advcl.data.dataset import TextDataset
from advcl.data.readers import DataError
from advcl.errors import BadInput
from advcl.evaluation.sts import embed_sentences

POSITIVE_MIN_SCORE = 4.0
DEFAULT_DATA = "stsb:validation"  # SimCSE's choice: the STS-B development set
PLOT_FORMATS = (".png", ".pdf", ".svg")


def alignment(x: torch.Tensor, positives: torch.Tensor, alpha: float = 2.0) -> float:
    """ℓ_align: the mean of ‖x_i − x⁺_i‖^α over the rows of two (pairs, dim) tensors of normalised
    embeddings (α = 2 in the papers)."""
    return (x.double() - positives.double()).norm(dim=1).pow(alpha).mean().item()


def uniformity(x: torch.Tensor, t: float = 2.0) -> float:
    """ℓ_uniform: log of the mean of exp(−t ‖x_i − x_j‖²) over the pairs i < j of an (n, dim) tensor, n >= 2
    (t = 2 in the papers)."""
    exponents = torch.pdist(x.double(), p=2).pow(2).mul(-t)
    return (torch.logsumexp(exponents, dim=0) - math.log(exponents.numel())).item()


def alignment_uniformity(model, tokenizer, dataset: TextDataset, max_length: int, batch_size: int, device,
                         min_score: float = POSITIVE_MIN_SCORE, progress=None) -> dict:
    """``{"alignment", "uniformity", "positive_pairs", "sentences", "pooling"}`` for an STS split: its pairs
    scored >= ``min_score`` are the positives, its distinct sentences the data distribution."""
    if not dataset.task.scored or dataset.pairs is None:
        raise DataError(f"{dataset.name}: alignment needs an STS dataset (sentence pairs with gold scores)")
    positive = [i for i, score in enumerate(dataset.labels) if score >= min_score]
    sentences = list(dict.fromkeys(dataset.texts + dataset.pairs))
    if not positive:
        raise DataError(f"{dataset.name}: no pair has a score of at least {min_score:g}, so there are no positives")
    if len(sentences) < 2:
        raise DataError(f"{dataset.name}: uniformity needs at least 2 distinct sentences")
    index = {sentence: i for i, sentence in enumerate(sentences)}
    embeddings = embed_sentences(model, tokenizer, sentences, max_length, batch_size, device, normalize=True,
                                 progress=progress)
    first = embeddings[[index[dataset.texts[i]] for i in positive]]
    second = embeddings[[index[dataset.pairs[i]] for i in positive]]
    return {
        "alignment": alignment(first, second),
        "uniformity": uniformity(embeddings),
        "positive_pairs": len(positive),
        "sentences": len(sentences),
        "pooling": model.pooling,
    }


def plot_alignment_uniformity(runs: Mapping[str, Mapping[str, float]], path: str | Path,
                              title: str = "Alignment and uniformity (lower is better on both)") -> list[Path]:
    """One marker per run at (ℓ_uniform, ℓ_align), as in SimCSE's Figure 2 and RobustSentEmbed's Figure 3;
    ``runs`` maps a label to a result of :func:`alignment_uniformity`. The title says how many positive pairs and
    sentences each point was computed on. ``path`` is a .png (written with its PDF twin), .pdf or .svg
    (advcl.plots.save_figure); returns the files written."""
    path = Path(path)
    if path.suffix.lower() not in PLOT_FORMATS:
        raise BadInput(f"plot {path} must end in {', '.join(PLOT_FORMATS)}")
    if not path.parent.is_dir():
        raise BadInput(f"plot folder {path.parent} does not exist")
    if not runs:
        raise BadInput("no runs to plot")
    from matplotlib import pyplot as plt

    from advcl.plots import save_figure

    markers = "osD^v<>ph*X"
    figure, axes = plt.subplots(figsize=(6.4, 4.8), dpi=150)
    for n, (label, result) in enumerate(runs.items()):
        axes.scatter(result["uniformity"], result["alignment"], s=70, marker=markers[n % len(markers)],
                     color=plt.get_cmap("tab10")(n % 10), label=label, zorder=3)
    counts = sorted({(r["positive_pairs"], r["sentences"]) for r in runs.values() if "positive_pairs" in r})
    axes.set_xlabel(r"$\ell_{\mathrm{uniform}}$ (uniformity)")
    axes.set_ylabel(r"$\ell_{\mathrm{align}}$ (alignment)")
    axes.set_title("\n".join([title, *(f"n = {pairs} positive pairs, {sentences} sentences"
                                         for pairs, sentences in counts)]), fontsize=10)
    axes.grid(True, alpha=0.3)
    axes.margins(0.15)
    axes.legend(loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0.0, frameon=False)
    return save_figure(figure, path, dpi=150)
