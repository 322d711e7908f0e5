"""What differs between attacking a classifier's label and attacking an STS similarity score, as one object.

:func:`advcl.attacks.runner.task_for` picks the task once from the dataset (``CLASSIFICATION`` in
:mod:`advcl.attacks.runner`, ``SIMILARITY`` in :mod:`advcl.attacks.advsts`); the runner, the session and the CLI
then call it and never branch on the dataset's task themselves. ``STATUS`` names TextAttack's result classes as the
rows spell them (``maximized``: AdvSTS only, whose goal maximises the deviation).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

STATUS = {"SuccessfulAttackResult": "successful", "FailedAttackResult": "failed",
          "SkippedAttackResult": "skipped", "MaximizedAttackResult": "maximized"}


@dataclass(frozen=True)
class AttackTask:
    """One attack goal: what TextAttack attacks, its ground truth, the JSON row of a result, the summary.

    ``example_input(dataset, i)``: a text, or an OrderedDict of the two texts of a pair. ``ground_truth(label)``:
    what ``Attack.attack`` takes (an int label, or the gold score as text). ``result_row(position, label, result,
    seconds)``: one line of ``results*.jsonl``. ``summary_extra(rows)``: keys added to TextAttack's summary.
    ``summary_labels``: (key, label) rows of the printed table. ``report_extra``: keys added to ``summary.json``.
    ``settings_note(options)``: what the printed title adds about the attack's task options ("" for none).
    """

    name: str
    example_input: Callable
    ground_truth: Callable
    result_row: Callable
    summary_labels: tuple
    summary_extra: Callable[[list[dict]], dict] = lambda rows: {}
    report_extra: dict = field(default_factory=dict)
    settings_note: Callable[[dict], str] = lambda options: ""
