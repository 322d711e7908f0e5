"""AdvSTS's goal function: move the predicted similarity of a pair away from its gold score (see
:mod:`advcl.attacks.advsts` for the definitions).

Import only after :func:`advcl.attacks.resources.activate` (this module imports TextAttack).
"""

from __future__ import annotations

import torch
from textattack import Attack
from textattack.goal_function_results import GoalFunctionResult
from textattack.goal_functions import GoalFunction, UntargetedClassification
from textattack.shared import validators

from advcl.attacks.advsts import TOLERANCE, ScoreScale


class SimilarityResult(GoalFunctionResult):
    """A goal-function result whose ``raw_output`` is the pair's cosine and ``output`` the predicted score."""

    def __init__(self, *args):
        super().__init__(*args, goal_function_result_type="Similarity")

    def get_text_color_input(self):
        return "red"

    def get_text_color_perturbed(self):
        return "blue"

    def get_colored_output(self, color_method=None):
        return f"{self.output:.2f}"


class SimilarityDeviation(GoalFunction):
    """Untargeted regression goal on a pair: score = ``|predicted - gold| / (high - low)``, complete (and, before the
    attack, skipped) when ``|predicted - gold| >= margin``.

    The victim returns cosines (:class:`advcl.attacks.victim.SentenceVictim`); ``scale`` maps them to predicted
    scores. The score is the deviation as a share of the range, in [0, 1] like the classification goal's
    ``1 - p(gold label)``: the recipes' searches were tuned on that scale (PWWS's softmax over saliencies, the
    genetic algorithms' temperature), and dividing by a constant changes no greedy or beam ranking. The gold score
    comes as TextAttack's ground truth, a str (:func:`advcl.attacks.advsts.ground_truth`). Both caches, the goal
    function's and the victim's sentence embeddings, are cleared when an example starts, so that an example's
    result does not depend on which examples ran before it.
    """

    def __init__(self, model_wrapper, scale: ScoreScale, margin: float, **kwargs):
        self.scale = scale
        self.margin = float(margin)
        self.gold = None
        super().__init__(model_wrapper, **kwargs)

    def init_attack_example(self, attacked_text, ground_truth_output):
        self.gold = float(ground_truth_output)
        self.clear_cache()
        return super().init_attack_example(attacked_text, ground_truth_output)

    def clear_cache(self):
        super().clear_cache()
        clear = getattr(self.model, "clear_cache", None)
        if clear is not None:
            clear()

    def deviation(self, cosine) -> float:
        """``|predicted - gold|`` in the dataset's score units."""
        return abs(self.scale.predict(float(cosine)) - self.gold)

    def _is_goal_complete(self, model_output, attacked_text):
        return self.deviation(model_output) >= self.margin - TOLERANCE

    def _get_score(self, model_output, attacked_text):
        return self.deviation(model_output) / self.scale.width

    def _get_displayed_output(self, raw_output):
        return self.scale.predict(float(raw_output))

    def _goal_function_result_type(self):
        return SimilarityResult

    def _process_model_outputs(self, inputs, outputs):
        cosines = torch.as_tensor(outputs, dtype=torch.float64).reshape(-1)
        if len(cosines) != len(inputs):
            raise ValueError(f"the victim gave {len(cosines)} cosines for {len(inputs)} pairs")
        return cosines

    def extra_repr_keys(self):
        return ["margin", *super().extra_repr_keys()]


# TextAttack checks which models a goal function suits (and logs a warning for a goal function it does not know):
# AdvSTS's victim exposes the same Hugging Face models as the classification victim.
validators.MODELS_BY_GOAL_FUNCTION.setdefault(SimilarityDeviation,
                                              validators.MODELS_BY_GOAL_FUNCTION[UntargetedClassification])


def retarget(attack: Attack, goal_function: GoalFunction) -> Attack:
    """The recipe's attack (constraints, transformation, search method, caches) with another goal function."""
    return Attack(goal_function, attack.pre_transformation_constraints + attack.constraints, attack.transformation,
                  attack.search_method, attack.transformation_cache_size, attack.constraint_cache_size)
