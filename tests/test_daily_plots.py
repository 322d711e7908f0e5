"""Issue 17, item 8: plots for papers: a vector twin (PDF) beside every PNG, n in the title or legend, the mean
± s.d. over seeds as error bars, and runs grouped into seeds by their resolved recipes."""

import numpy as np
import pytest

import advcl.plots
from advcl.plots import robustness_plot, save_figure
from advcl.report import RunSummary, seed_groups


def row(run, eps, accuracy, clean=0.9, examples=40):
    return {"run": run, "data": "sst2:validation@40", "norm": "l2", "steps": 3, "examples": examples,
            "clean_accuracy": clean, "eps": eps, "accuracy": accuracy, "cosine_distance": 0.1}


@pytest.fixture
def captured(monkeypatch):
    """The figure a plot function would save (instead of saving it)."""
    figures = []
    monkeypatch.setattr(advcl.plots, "save_figure", lambda figure, path, dpi=0: figures.append(figure) or [])
    return figures


def test_robustness_plot_draws_seed_means_with_sd_error_bars(captured):
    rows = [row("a-s1", 0.1, 0.50, clean=0.80), row("a-s1", 0.2, 0.30, clean=0.80),
            row("a-s2", 0.1, 0.60, clean=0.90), row("a-s2", 0.2, 0.20, clean=0.90),
            row("b", 0.1, 0.70), row("b", 0.2, 0.40)]
    robustness_plot(rows, "unused.png", {"a": ["a-s1", "a-s2"], "b": ["b"]})
    [axes] = captured[0].axes
    seeds, single = axes.containers
    line, _, (bars,) = seeds
    np.testing.assert_allclose(np.asarray(line.get_xdata(), float), [0.0, 0.1, 0.2])
    np.testing.assert_allclose(np.asarray(line.get_ydata(), float), [0.85, 0.55, 0.25])
    sd = np.array([np.std([0.8, 0.9], ddof=1), np.std([0.5, 0.6], ddof=1), np.std([0.3, 0.2], ddof=1)])
    segments = np.array([segment[:, 1] for segment in bars.get_segments()])  # (low, high) per ε
    np.testing.assert_allclose(segments, np.stack([[0.85, 0.55, 0.25] - sd, [0.85, 0.55, 0.25] + sd], axis=1))
    assert single.lines[2] == () or not single.has_yerr  # one run: no error bars
    legend = [text.get_text() for text in axes.get_legend().get_texts()]
    assert legend == ["a (mean ± s.d., 2 seeds)", "b"]
    assert "n = 40 examples" in axes.get_title()


def test_save_figure_writes_the_png_and_a_pdf_twin(tmp_path):
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots()
    axes.plot([0, 1], [1, 0])
    assert save_figure(figure, tmp_path / "f.png") == [tmp_path / "f.png", tmp_path / "f.pdf"]
    assert (tmp_path / "f.png").read_bytes()[:4] == b"\x89PNG" and (tmp_path / "f.pdf").read_bytes()[:5] == b"%PDF-"
    figure, axes = plt.subplots()
    axes.plot([0, 1], [1, 0])
    assert save_figure(figure, tmp_path / "g.svg") == [tmp_path / "g.svg"]
    assert b"<svg" in (tmp_path / "g.svg").read_bytes()[:400]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f.pdf", "f.png", "g.svg"]  # no temporary files left


@pytest.mark.parametrize("suffix", [".png", ".pdf", ".svg"])
def test_the_same_figure_gives_the_same_bytes(tmp_path, suffix):
    """Reports regenerated from the same runs must not change the committed files (no dates, no random SVG ids)."""
    import matplotlib.pyplot as plt

    written = []
    for name in ("a", "b"):
        figure, axes = plt.subplots()
        axes.errorbar([0, 1, 2], [0.9, 0.5, 0.3], yerr=[0.01, 0.02, 0.03], marker="o", label="x")
        axes.legend()
        save_figure(figure, tmp_path / f"{name}{suffix}")
        written.append((tmp_path / f"{name}{suffix}").read_bytes())
    assert written[0] == written[1]


def summary(label, seed, lr=1e-3):
    recipe = {"run": {"name": label, "seed": seed, "output_dir": "runs"}, "train": {"lr": lr}}
    return RunSummary(label, None, {}, recipe=recipe)


def test_seed_groups_are_runs_that_differ_only_in_seed():
    runs = [summary("carl", 0), summary("vanilla", 0, lr=2e-5), summary("carl-1", 1), summary("carl-2", 2),
            summary("carl-again", 0), summary("vanilla-1", 1, lr=2e-5)]
    groups = {label: [s.label for s in members] for label, members in seed_groups(runs).items()}
    # carl-again repeats seed 0: not another seed of carl, a run of its own
    assert groups == {"carl": ["carl", "carl-1", "carl-2"], "vanilla": ["vanilla", "vanilla-1"],
                      "carl-again": ["carl-again"]}
