"""The plots of ``advcl report`` and ``advcl eval --plot`` (matplotlib, Agg backend: no display needed).

Every plot is written as the file asked for (PNG, PDF or SVG, by its suffix) and, beside a PNG, a PDF twin of
the same figure for papers (:func:`save_figure`). Each plot says what it was computed on: the number of
evaluation examples in its title and, where several runs are seeds of one setting, the mean over the seeds
with ± one standard deviation (error bars, or a band for the training curves) and the number of seeds in the
legend.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (after the backend is chosen)
import numpy as np  # noqa: E402

from advcl.runtime.atomic import atomic_path

DPI = 120
FORMATS = (".png", ".pdf", ".svg")
VECTOR_TWIN = ".pdf"  # written beside every PNG
# no creation date in the files and fixed SVG element ids: the same figure gives the same bytes
METADATA = {".pdf": {"CreationDate": None}, ".svg": {"Date": None}, ".png": {}}
SVG_HASHSALT = "advcl"  # matplotlib derives SVG ids from a random salt unless one is set


def save_figure(figure, path: Path, dpi: int = DPI) -> list[Path]:
    """Write ``figure`` to ``path`` (.png, .pdf or .svg) and, for a PNG, to its PDF twin; each file atomically
    (a temporary file beside it, then a rename). Closes the figure; returns the paths written."""
    path = Path(path)
    paths = [path] + ([path.with_suffix(VECTOR_TWIN)] if path.suffix.lower() == ".png" else [])
    try:
        figure.tight_layout()
        for target in paths:
            suffix = target.suffix.lower()
            with atomic_path(target) as tmp, matplotlib.rc_context({"svg.hashsalt": SVG_HASHSALT}):
                figure.savefig(tmp, dpi=dpi, bbox_inches="tight", metadata=METADATA[suffix])
    finally:
        plt.close(figure)
    return paths


def seeds_label(label: str, seeds: int) -> str:
    return label if seeds == 1 else f"{label} (mean ± s.d., {seeds} seeds)"


def _spread(values: Sequence[Sequence[float]]) -> tuple[np.ndarray, np.ndarray]:
    """Mean and sample standard deviation (ddof 1; 0 for one seed) over the first axis."""
    values = np.asarray(values, dtype=np.float64)
    return values.mean(axis=0), values.std(axis=0, ddof=1) if len(values) > 1 else np.zeros(values.shape[1])


def _common_steps(series: list[list[dict]], key: str) -> tuple[list[int], list[list[float]]]:
    """The steps every seed logged ``key`` at, and each seed's values there."""
    steps = sorted(set.intersection(*({r["step"] for r in rows if key in r} for rows in series)))
    values = [[{r["step"]: r[key] for r in rows if key in r}[s] for s in steps] for rows in series]
    return steps, values


def training_curves(groups: Mapping[str, Sequence], path: Path) -> list[Path]:
    """Left: training loss per logged step; right: the selection metric on the validation split. ``groups`` maps
    a label to the run summaries (advcl.report.RunSummary) that are seeds of one setting: one run is one line,
    several are their mean over the steps all of them logged, with a ± s.d. band."""
    figure, (loss_axes, metric_axes) = plt.subplots(1, 2, figsize=(11, 4.2))
    metrics = set()
    for n, (label, runs) in enumerate(groups.items()):
        colour = plt.get_cmap("tab10")(n % 10)
        metric = runs[0].report.get("select_metric", "accuracy")
        for axes, series, key, marker in ((loss_axes, [r.train for r in runs], "loss", None),
                                          (metric_axes, [r.validation for r in runs], metric, "o")):
            if not all(series):
                continue
            steps, values = _common_steps(list(series), key)
            if not steps:
                continue
            mean, spread = _spread(values)
            axes.plot(steps, mean, marker=marker, color=colour, label=seeds_label(label, len(runs)))
            if len(runs) > 1:
                axes.fill_between(steps, mean - spread, mean + spread, color=colour, alpha=0.2, linewidth=0)
            if key == metric:
                metrics.add(metric)
    loss_axes.set(title="training loss", xlabel="optimizer step", ylabel="loss")
    name = " / ".join(sorted(metrics)) or "metric"
    examples = {row["examples"] for runs in groups.values() for r in runs for row in r.validation if "examples" in row}
    on = f" (n = {', '.join(map(str, sorted(examples)))} examples)" if examples else ""
    metric_axes.set(title=f"validation {name}{on}", xlabel="optimizer step", ylabel=name)
    for axes in (loss_axes, metric_axes):
        axes.grid(alpha=0.3)
        if axes.lines:
            axes.legend(fontsize=9)
    return save_figure(figure, path)


def robustness_plot(rows: list[dict], path: Path, groups: Mapping[str, Sequence[str]] | None = None) -> list[Path]:
    """Accuracy under the embedding-space attack against ε (ε = 0: clean), one panel per evaluation set, with
    its number of examples in the title. ``groups`` maps a legend label to the run labels that are seeds of one
    setting (default: each run alone); a group of several is drawn as the mean over those seeds at each ε with
    ± s.d. error bars. Groups keep their order (and so their colours) from the training curves."""
    groups = groups or {run: [run] for run in dict.fromkeys(row["run"] for row in rows)}
    panels_rows: dict[str, list[dict]] = {}
    for row in rows:
        panels_rows.setdefault(row["data"], []).append(row)
    figure, panels = plt.subplots(1, len(panels_rows), figsize=(5.5 * len(panels_rows), 4.2), squeeze=False)
    for axes, (data, data_rows) in zip(panels[0], panels_rows.items()):
        for n, (label, members) in enumerate(groups.items()):
            curves = []
            for run in members:
                group = sorted((r for r in data_rows if r["run"] == run), key=lambda r: r["eps"])
                if group:
                    curves.append({0.0: group[0]["clean_accuracy"]} | {r["eps"]: r["accuracy"] for r in group})
            if not curves:
                continue
            eps = sorted(set.intersection(*(set(c) for c in curves)))
            mean, spread = _spread([[c[e] for e in eps] for c in curves])
            axes.errorbar(eps, mean, yerr=spread if len(curves) > 1 else None, marker="o", capsize=3,
                          color=plt.get_cmap("tab10")(n % 10), label=seeds_label(label, len(curves)))
        first = data_rows[0]
        examples = sorted({r["examples"] for r in data_rows if r.get("examples") is not None})
        on = f", n = {', '.join(map(str, examples))} examples" if examples else ""
        axes.set(title=f"{data}: PGD-{first['steps']} ({first['norm']}) on the input embeddings{on}",
                 xlabel="attack radius ε (0 = clean)", ylabel="accuracy under attack", ylim=(0, 1))
        axes.title.set_fontsize(10)
        axes.grid(alpha=0.3)
        axes.legend(fontsize=9)
    return save_figure(figure, path)
