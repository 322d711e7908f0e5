"""Which rows of an ``advcl perturb`` dataset train an objective on real adversarial text (TaiChi, ADA).

``advcl perturb`` writes every row it was given, each with the attack's ``status``: ``successful`` (adv_text
fools the victim), ``failed`` (adv_text is the attack's last try, and the victim still classifies it right) or
``skipped`` (the victim was already wrong; adv_text repeats the clean text). The papers' D_adv is the successful
attacks (TaiChi, Chen et al. 2024, §3.3; docs/methods.md, "Supervised / TaiChi"): a skipped row pairs x with itself, a
zero-distance positive and a KL between identical inputs. ``data.adv_statuses`` picks the statuses that train
(default ``["successful"]``); the run's report.json records how many rows of each status were used and dropped.
"""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING

from advcl.config.validate import RecipeError
from advcl.data.readers import DataError

if TYPE_CHECKING:  # the recipe check imports this module; torch stays out of a CLI start
    from advcl.data.dataset import TextDataset

# every status `advcl perturb` and `advcl attack` write (advcl.attacks.runner.STATUS; maximized: AdvSTS only)
ATTACK_STATUSES = ("successful", "failed", "skipped", "maximized")


def check_statuses(statuses: list[str]) -> None:
    """Recipe check of ``data.adv_statuses``: at least one, each a status ``advcl perturb`` writes."""
    if not statuses:
        raise RecipeError(f"'data.adv_statuses' is empty: keep at least one of {', '.join(ATTACK_STATUSES)}")
    for status in statuses:
        if status not in ATTACK_STATUSES:
            raise RecipeError(f"'data.adv_statuses' holds {status!r}; the statuses are {', '.join(ATTACK_STATUSES)}")


def keep_statuses(dataset: TextDataset, statuses: list[str]) -> tuple[TextDataset, dict]:
    """The rows whose status is in ``statuses`` and ``{"used": {status: n}, "dropped": {status: n}}``.

    A dataset without statuses (``data.adv_status_column = ""``) is kept whole, its rows counted as ``unknown``.
    No row left is a one-line :class:`DataError` that says what the file holds.
    """
    if dataset.adv_statuses is None:
        return dataset, {"used": {"unknown": len(dataset)}, "dropped": {}}
    counts = Counter(dataset.adv_statuses)
    kept = [i for i, status in enumerate(dataset.adv_statuses) if status in statuses]
    summary = {"used": {s: n for s, n in counts.items() if s in statuses},
               "dropped": {s: n for s, n in counts.items() if s not in statuses}}
    if not kept:
        held = ", ".join(f"{n} {s}" for s, n in counts.items())
        raise DataError(f"{dataset.name}: no row has an attack status in data.adv_statuses = {list(statuses)} "
                        f"(it holds {held}); add statuses to data.adv_statuses or attack more rows")
    return (dataset if len(kept) == len(dataset) else dataset.select(kept)), summary


def describe(summary: dict) -> str:
    """One line for the terminal: ``adversarial rows: 812 successful used; 100 failed, 88 skipped dropped``."""
    used = ", ".join(f"{n} {s}" for s, n in summary["used"].items())
    dropped = ", ".join(f"{n} {s}" for s, n in summary["dropped"].items())
    return f"adversarial rows: {used} used" + (f"; {dropped} dropped (data.adv_statuses)" if dropped else "")
