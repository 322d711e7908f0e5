"""The PNG plots of ``advcl report`` (matplotlib, Agg backend: no display needed)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (after the backend is chosen)

DPI = 120


def _save(figure, path: Path) -> None:
    figure.tight_layout()
    figure.savefig(path, dpi=DPI)
    plt.close(figure)


def training_curves(runs, path: Path) -> None:
    """Left: training loss per logged step; right: each run's selection metric on the validation split."""
    figure, (loss_axes, metric_axes) = plt.subplots(1, 2, figsize=(11, 4.2))
    metrics = set()
    for summary in runs:
        if summary.train:
            loss_axes.plot([r["step"] for r in summary.train], [r["loss"] for r in summary.train], label=summary.label)
        metric = summary.report.get("select_metric", "accuracy")
        points = [r for r in summary.validation if metric in r]
        if points:
            metrics.add(metric)
            metric_axes.plot([r["step"] for r in points], [r[metric] for r in points], marker="o", label=summary.label)
    loss_axes.set(title="training loss", xlabel="optimizer step", ylabel="loss")
    name = " / ".join(sorted(metrics)) or "metric"
    metric_axes.set(title=f"validation {name}", xlabel="optimizer step", ylabel=name)
    for axes in (loss_axes, metric_axes):
        axes.grid(alpha=0.3)
        if axes.lines:
            axes.legend(fontsize=9)
    _save(figure, path)


def robustness_plot(rows: list[dict], path: Path) -> None:
    """Accuracy under the embedding-space attack against ε (ε = 0: clean), one panel per evaluation set;
    runs keep their order (and so their colours) from the training curves."""
    panels_rows: dict[str, dict[str, list[dict]]] = {}
    for row in rows:
        panels_rows.setdefault(row["data"], {}).setdefault(row["run"], []).append(row)
    figure, panels = plt.subplots(1, len(panels_rows), figsize=(5.5 * len(panels_rows), 4.2), squeeze=False)
    for axes, (data, by_run) in zip(panels[0], panels_rows.items()):
        for run, group in by_run.items():
            group = sorted(group, key=lambda r: r["eps"])
            axes.plot([0.0] + [r["eps"] for r in group], [group[0]["clean_accuracy"]] + [r["accuracy"] for r in group],
                      marker="o", label=run)
        first = next(iter(by_run.values()))[0]
        axes.set(title=f"{data}: PGD-{first['steps']} ({first['norm']}) on the input embeddings",
                 xlabel="attack radius ε (0 = clean)", ylabel="accuracy under attack", ylim=(0, 1))
        axes.grid(alpha=0.3)
        axes.legend(fontsize=9)
    _save(figure, path)
