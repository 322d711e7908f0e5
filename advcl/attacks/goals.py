"""Each data task's attack goal, in one place: the label flip (:mod:`advcl.attacks.classification`) for
classification and pair-classification splits, AdvSTS (:mod:`advcl.attacks.advsts`, :mod:`advcl.attacks.deviation`)
for STS splits. :func:`goal_for` is asked once per attack, by :func:`advcl.attacks.session.prepare`, with the task
``--data`` loads as (:func:`advcl.data.catalogue.task_of_spec`).

An unlabeled split has no goal: :func:`goal_for` refuses it before any model is loaded.
"""

from __future__ import annotations

from advcl.attacks import advsts, classification
from advcl.attacks.tasks import AttackTask
from advcl.attacks.victim import SentenceVictim, Victim
from advcl.data import tasks
from advcl.data.tasks import DataTask
from advcl.errors import BadInput


def _deviation_goal(attack, victim, options):
    """The recipe's attack with AdvSTS's goal function (which imports TextAttack: called after the resources are
    activated)."""
    from advcl.attacks.deviation import SimilarityDeviation, retarget

    low, high = options["sts_score_range"]
    return retarget(attack, SimilarityDeviation(victim, advsts.ScoreScale(low, high), options["sts_margin"]))


LABEL_FLIP = AttackTask("classification", classification.load, Victim, classification.example_input, int,
                        classification.result_row, classification.SUMMARY_LABELS)
ADVSTS = AttackTask("similarity", advsts.load, SentenceVictim, advsts.example_input, advsts.ground_truth,
                    advsts.result_row, advsts.SUMMARY_LABELS, aim=_deviation_goal, goal="AdvSTS",
                    summary_extra=advsts.spearman_summary, report_extra={"sts_mapping": advsts.MAPPING},
                    settings_note=advsts.settings_note)

GOALS = {tasks.CLASSIFICATION: LABEL_FLIP, tasks.PAIR_CLASSIFICATION: LABEL_FLIP, tasks.SIMILARITY: ADVSTS}


def goal_for(task: DataTask, data: str) -> AttackTask:
    """The attack goal of the task ``data`` loads as; an unlabeled split is refused."""
    if task not in GOALS:
        raise BadInput(f"{data} has no class labels or similarity scores: an attack needs the true label "
                       "(or gold score) of each example")
    return GOALS[task]
