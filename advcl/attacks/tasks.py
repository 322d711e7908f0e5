"""What differs between attacking a classifier's label and attacking an STS similarity score, as one object.

:mod:`advcl.attacks.goals` builds one :class:`AttackTask` per goal (a label flip from the parts in
:mod:`advcl.attacks.classification`, AdvSTS from those in :mod:`advcl.attacks.advsts`) and picks it once from the
data's task (:class:`advcl.data.tasks.DataTask`); the session, the runner and the CLI then call it and never branch
on the task themselves. ``STATUS`` names TextAttack's result classes as the rows spell them (``maximized``: AdvSTS
only, whose goal maximises the deviation).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from advcl.data.dataset import TextDataset

STATUS = {"SuccessfulAttackResult": "successful", "FailedAttackResult": "failed",
          "SkippedAttackResult": "skipped", "MaximizedAttackResult": "maximized"}


@dataclass(frozen=True)
class Target:
    """What a task loads for a request: the model (an :class:`advcl.runs.LoadedModel`), the seeded sample, and the
    task's own options, which join the attack's settings (a folder resumes only runs with equal settings)."""

    loaded: object
    sample: TextDataset
    options: dict


@dataclass(frozen=True)
class AttackTask:
    """One attack goal: what it loads, its victim, what TextAttack attacks, its ground truth, the JSON row of a
    result, the summary.

    ``load(request)``: the :class:`Target` of an :class:`advcl.attacks.session.AttackRequest`, refusing a request
    the task cannot run (one-line :class:`~advcl.errors.BadInput`). ``victim``: the model wrapper TextAttack queries
    (built with the loaded model, tokenizer, max length, batch size, device and onnxruntime session). ``aim(attack,
    victim, options)``: the recipe's attack pointed at this goal (unchanged for a label flip). ``goal``: what the
    attack's description names after the recipe ("" for none). ``example_input(dataset, i)``: a text, or an
    OrderedDict of the two texts of a pair. ``ground_truth(label)``: what ``Attack.attack`` takes (an int label, or
    the gold score as text). ``result_row(position, label, result, seconds)``: one line of ``results*.jsonl``.
    ``summary_extra(rows)``: keys added to TextAttack's summary. ``summary_labels``: (key, label) rows of the printed
    table. ``report_extra``: keys added to ``summary.json``. ``settings_note(options)``: what the printed title adds
    about the attack's task options ("" for none).
    """

    name: str
    load: Callable[..., Target]
    victim: Callable
    example_input: Callable
    ground_truth: Callable
    result_row: Callable
    summary_labels: tuple
    aim: Callable = lambda attack, victim, options: attack
    goal: str = ""
    summary_extra: Callable[[list[dict]], dict] = lambda rows: {}
    report_extra: dict = field(default_factory=dict)
    settings_note: Callable[[dict], str] = lambda options: ""
