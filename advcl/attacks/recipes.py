"""The built-in attacks: TextAttack's recipes (Morris et al. 2020, EMNLP demos, "TextAttack: A Framework for
Adversarial Attacks, Data Augmentation, and Adversarial Training in NLP"), each with offline stand-ins.

An attack component (what a plugin registers with ``register_attacks``) is a class with

- ``name`` and a ``Config`` dataclass (its options; ``mlm`` is the only one the built-ins have);
- ``needs``: names of resources from :data:`advcl.attacks.resources.RESOURCE_NAMES` it cannot run without;
- ``stand_ins()``: what replaces the resources of the published attack, named in every report;
- ``build(model_wrapper)``: a ``textattack.Attack`` (goal function, constraints, transformation, search method)
  against ``model_wrapper`` (called after the resources are activated, so TextAttack may be imported there).

A built-in builds the stock recipe, unchanged, while the names the recipe's module would use for unavailable
resources (``UniversalSentenceEncoder``, ``WordSwapMaskedLM``) point at the stand-ins of
:mod:`advcl.attacks.standins`, and PWWS's search at the batched equivalent in :mod:`advcl.attacks.faster`;
counter-fitted vectors, WordNet and NLTK data need no replacement: the stock code finds advcl's own copies in the
resources folder.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import ClassVar
from unittest import mock

from advcl.errors import BadInput
from advcl.hookspecs import hookimpl

COUNTER_FITTED = "counter-fitted GloVe-50d"
MINILM = "MiniLM sentence encoder"
# Every recipe imports textattack, whose import reads the NLTK stopwords.
BASE_NEEDS = ("stopwords",)


def describe(attack, goal: str = "") -> str:
    """The attack's name, with the goal it is aimed at when that is not a label flip and what stood in for the
    published resources: the label every report carries (``textfooler on AdvSTS (offline: ...)`` for an attack on
    sentence-pair similarity, :mod:`advcl.attacks.advsts`)."""
    stand_ins = attack.stand_ins()
    offline = f" (offline: {', '.join(stand_ins)})" if stand_ins else ""
    return attack.name + (f" on {goal}" if goal else "") + offline


class TextAttackRecipe:
    """One of TextAttack's recipes (``recipe``: ``module:Class``), built with ``replacements()`` in its module."""

    name: ClassVar[str]
    recipe: ClassVar[str]
    needs: ClassVar[tuple[str, ...]] = BASE_NEEDS

    @dataclass
    class Config:
        pass

    def __init__(self, config=None):
        self.config = config or self.Config()

    def stand_ins(self) -> list[str]:
        return []

    def replacements(self) -> dict[str, object]:
        """Names in the recipe's module to point elsewhere while it builds."""
        return {}

    def build(self, model_wrapper):
        module_name, class_name = self.recipe.split(":")
        module = importlib.import_module(module_name)
        replacements = self.replacements()
        if not replacements:
            return getattr(module, class_name).build(model_wrapper)
        with mock.patch.multiple(module, **replacements):
            return getattr(module, class_name).build(model_wrapper)


class SentenceEncoderRecipe(TextAttackRecipe):
    """A recipe whose semantic constraint is the Universal Sentence Encoder: MiniLM stands in."""

    def stand_ins(self):
        return [MINILM]

    def replacements(self):
        from advcl.attacks import standins

        return {"UniversalSentenceEncoder": standins.MiniLMSentenceEncoder}


class TextFooler(SentenceEncoderRecipe):
    """TextFooler (Jin et al. 2020, AAAI, "Is BERT Really Robust? A Strong Baseline for Natural Language Attack on
    Text Classification and Entailment"): words ranked by deletion importance, swapped for counter-fitted
    embedding neighbours (cos ≥ 0.5, same part of speech) under a sentence-encoder similarity threshold."""

    name = "textfooler"
    recipe = "textattack.attack_recipes.textfooler_jin_2019:TextFoolerJin2019"
    needs = BASE_NEEDS + ("counter-fitted-vectors", "pos-tagger", "universal-tagset", "sentence-encoder")

    def stand_ins(self):
        return [COUNTER_FITTED, MINILM]


class TextBugger(SentenceEncoderRecipe):
    """TextBugger (Li et al. 2019, NDSS, "TextBugger: Generating Adversarial Text Against Real-world Applications"):
    character bugs (insert, delete, swap, homoglyph) and embedding-neighbour word swaps."""

    name = "textbugger"
    recipe = "textattack.attack_recipes.textbugger_li_2018:TextBuggerLi2018"
    needs = BASE_NEEDS + ("counter-fitted-vectors", "sentence-encoder")

    def stand_ins(self):
        return [COUNTER_FITTED, MINILM]

    def replacements(self):
        from advcl.attacks import standins

        return {**super().replacements(), "WordSwapHomoglyphSwap": standins.HomoglyphSwap}


class PWWS(TextAttackRecipe):
    """PWWS (Ren et al. 2019, ACL, "Generating Natural Language Adversarial Examples through Probability Weighted
    Word Saliency"): WordNet synonym swaps ordered by saliency-weighted swap effectiveness."""

    name = "pwws"
    recipe = "textattack.attack_recipes.pwws_ren_2019:PWWSRen2019"
    needs = BASE_NEEDS + ("wordnet",)

    def replacements(self):
        from advcl.attacks import faster

        return {"GreedyWordSwapWIR": faster.PrefetchingGreedyWordSwapWIR}


class DeepWordBug(TextAttackRecipe):
    """DeepWordBug (Gao et al. 2018, IEEE S&P Workshops, "Black-box Generation of Adversarial Text Sequences to
    Evade Deep Learning Classifiers"): character swaps, substitutions, deletions and insertions (edit distance ≤ 30)."""

    name = "deepwordbug"
    recipe = "textattack.attack_recipes.deepwordbug_gao_2018:DeepWordBugGao2018"


class Pruthi(TextAttackRecipe):
    """Pruthi et al. 2019 (ACL, "Combating Adversarial Misspellings with Robust Word Recognition"): one typo
    (swap, deletion, insertion, QWERTY neighbour) in a word of at least 4 letters."""

    name = "pruthi"
    recipe = "textattack.attack_recipes.pruthi_2019:Pruthi2019"


class IGA(TextAttackRecipe):
    """IGA (Wang et al. 2019, arXiv:1909.06723, "Natural Language Adversarial Attack and Defense in Word Level"):
    an improved genetic search over counter-fitted embedding-neighbour swaps."""

    name = "iga"
    recipe = "textattack.attack_recipes.iga_wang_2019:IGAWang2019"
    needs = BASE_NEEDS + ("counter-fitted-vectors",)

    def stand_ins(self):
        return [COUNTER_FITTED]


class MaskedLMRecipe(SentenceEncoderRecipe):
    """A recipe that proposes words with a masked language model: no hub model is reachable offline, so the user
    names one (``--mlm``): an ``mlm`` run folder (``recipes/mlm_head_sentences.toml`` trains one; its last
    checkpoint, through :func:`advcl.runs.masked_lm.load_masked_lm`) or a Hugging Face masked-LM folder."""

    @dataclass
    class Config:
        mlm: str = ""  # an mlm run folder or a Hugging Face masked-LM folder

    def stand_ins(self):
        return [f"masked LM {self.config.mlm}", MINILM]

    def replacements(self):
        from advcl.attacks import standins
        from advcl.modeling.loading import resolve_model_path
        from advcl.runs import RunFolder
        from advcl.runs.masked_lm import load_masked_lm

        if not self.config.mlm:
            raise BadInput(f"{self.name} needs a masked language model and none ships offline: pass --mlm PATH, "
                           "an mlm run folder (advcl train --recipe recipes/mlm_head_sentences.toml) or a "
                           "Hugging Face masked-LM folder")
        if RunFolder.is_run(self.config.mlm):
            masked_lm = standins.local_masked_lm(*load_masked_lm(self.config.mlm))
        else:
            masked_lm = standins.local_masked_lm(resolve_model_path(self.config.mlm))
        return {**super().replacements(), "WordSwapMaskedLM": masked_lm}


class BAE(MaskedLMRecipe):
    """BAE-R (Garg and Ramakrishnan 2020, EMNLP, "BAE: BERT-based Adversarial Examples for Text Classification"):
    masked-LM replacements of important words under part-of-speech and sentence-encoder constraints."""

    name = "bae"
    recipe = "textattack.attack_recipes.bae_garg_2019:BAEGarg2019"
    needs = BASE_NEEDS + ("pos-tagger", "universal-tagset", "sentence-encoder")


class BERTAttack(MaskedLMRecipe):
    """BERT-Attack (Li et al. 2020, EMNLP, "BERT-ATTACK: Adversarial Attack Against BERT Using BERT"): masked-LM
    replacements (at most 40 % of the words) of words ranked by [UNK]-replacement importance."""

    name = "bert-attack"
    recipe = "textattack.attack_recipes.bert_attack_li_2020:BERTAttackLi2020"
    needs = BASE_NEEDS + ("sentence-encoder",)


@hookimpl
def register_attacks(register):
    for attack in (TextFooler, PWWS, TextBugger, DeepWordBug, BAE, BERTAttack, Pruthi, IGA):
        register(attack)
