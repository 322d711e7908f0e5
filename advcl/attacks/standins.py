"""Offline stand-ins for what TextAttack's recipes would download, put in place while a recipe builds.

Import only after :func:`advcl.attacks.resources.activate` (this module imports TextAttack).
"""

from __future__ import annotations

import functools
from collections import OrderedDict

import numpy as np
import torch
from textattack.constraints.semantics.sentence_encoders import SentenceEncoder
from textattack.transformations import WordSwapHomoglyphSwap, WordSwapMaskedLM

from advcl.attacks.resources import sentence_encoder_path

ENCODING_CACHE = 2**15  # sentences kept per encoder (384 floats each)


@functools.cache
def _sentence_transformer(path: str):
    from sentence_transformers import SentenceTransformer
    from textattack.shared.utils import device

    return SentenceTransformer(path, device=str(device))


class CachedEncoder:
    """``encode(sentences)`` of a SentenceTransformer, each distinct sentence encoded once.

    TextAttack's windowed sentence-encoder constraint encodes the original text's window once per candidate
    (``SentenceEncoder._score_list``); this encodes it once, and keeps recent windows for later words.
    """

    def __init__(self, model, size: int = ENCODING_CACHE):
        self.model, self.size = model, size
        self.cache: OrderedDict[str, np.ndarray] = OrderedDict()

    def encode(self, sentences: list[str]) -> np.ndarray:
        new = [s for s in dict.fromkeys(sentences) if s not in self.cache]
        if new:
            for sentence, vector in zip(new, self.model.encode(new, convert_to_numpy=True)):
                self.cache[sentence] = vector
        for sentence in sentences:
            self.cache.move_to_end(sentence)
        out = np.stack([self.cache[s] for s in sentences])
        while len(self.cache) > self.size:
            self.cache.popitem(last=False)
        return out


class MiniLMSentenceEncoder(SentenceEncoder):
    """The shipped all-MiniLM-L6-v2 in place of the Universal Sentence Encoder (Cer et al. 2018), which only
    tensorflow_hub serves. It takes USE's arguments, so a recipe keeps its thresholds, metric and window;
    those were tuned for USE, which is why every report names this stand-in."""

    def __init__(self, threshold=0.8, large=False, metric="angular", **kwargs):
        super().__init__(threshold=threshold, metric=metric, **kwargs)
        self.model = CachedEncoder(_sentence_transformer(sentence_encoder_path()))

    def encode(self, sentences):
        return self.model.encode(sentences)

    def _score_list(self, starting_text, transformed_texts):
        """TextAttack's scores, without encoding the texts whose score ``_check_constraint_many`` then overwrites
        with 1 (texts shorter than the window, when ``skip_text_shorter_than_window``): same results, and for short
        sentences (most of SST-2 under TextFooler's 15-word window) no encoder call at all."""
        if not self.skip_text_shorter_than_window:
            return super()._score_list(starting_text, transformed_texts)
        scores = torch.ones(len(transformed_texts))
        long = [i for i, text in enumerate(transformed_texts) if len(text.words) >= self.window_size]
        if long:
            scores[long] = super()._score_list(starting_text, [transformed_texts[i] for i in long]).float()
        return scores


class HomoglyphSwap(WordSwapHomoglyphSwap):
    """TextBugger's homoglyph swap. The textattack 0.3.11 wheel lacks ``shared/intentional_homoglyphs.txt``, which
    the constructor reads last, after setting up everything TextBugger uses (its own glyph table); the file feeds
    only bad-characters' differential-evolution search, so its absence leaves that table empty here."""

    def __init__(self, **kwargs):
        try:
            super().__init__(**kwargs)
        except FileNotFoundError:
            self.homos_intentional = {}


def local_masked_lm(masked_lm, tokenizer=None):
    """TextAttack's masked-LM word swap (BAE, BERT-Attack) on a local masked LM instead of a hub model: a folder
    path (TextAttack loads it), or a loaded model with its tokenizer (an advcl mlm run)."""
    return functools.partial(WordSwapMaskedLM, masked_language_model=masked_lm, tokenizer=tokenizer)
