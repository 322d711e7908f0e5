"""``advcl report``: one markdown page and PNG plots comparing run folders.

What it reads from each run folder (advcl.runs): metrics.jsonl (training curves), report.json's status and
best metric, its ``"evaluations"`` (clean metrics and the per-example predictions of ``advcl eval``), its
``"robustness"`` (``advcl eval --robust pgd``: accuracy under attack at each ε) and its ``"attacks"`` (``advcl attack``'s
text-space attack summaries, ``{attack:data: {"summary": {metric: number}}}``). What it writes into the output folder:

    report.md             the comparison table, significance tests, robustness and attack tables, the plots
    report.json           the same numbers, machine-readable (also what ``--json`` prints)
    training_curves.png   training loss and the validation metric against the optimizer step, one line per run
    robustness.png        accuracy under the embedding-space attack against ε, one panel per evaluation set
    *.pdf                 each plot again as a vector figure, for papers

Runs whose resolved recipes differ only in ``run.seed`` (and their names and folders) are seeds of one setting:
the plots draw their mean with ± one standard deviation and say how many seeds (:func:`seed_groups`).

Significance (advcl.evaluation.significance): the first run is the baseline; every other run is compared with it
on each evaluation set both have predictions for: McNemar's test for accuracy, approximate randomisation for
macro-F1 and MCC.
"""

from __future__ import annotations

import json
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from advcl.errors import BadInput
from advcl.evaluation.predictions import pair_predictions
from advcl.evaluation.sampling import describe_sample
from advcl.evaluation.significance import DEFAULT_TRIALS, mcnemar, randomisation_test
from advcl.runs import RunFolder

RANDOMISED = ("macro_f1", "mcc")


@dataclass
class RunSummary:
    label: str
    run: RunFolder
    report: dict
    train: list[dict] = field(default_factory=list)  # metrics.jsonl rows of split "train"
    validation: list[dict] = field(default_factory=list)
    recipe: dict = field(default_factory=dict)  # config.toml, the resolved recipe

    @classmethod
    def read(cls, path: Path, label: str) -> RunSummary:
        if not RunFolder.is_run(path):
            raise BadInput(f"{path} is not a run folder (no config.toml and model/ in it)")
        run = RunFolder(path)
        rows = []
        if run.metrics.is_file():
            for line in run.metrics.read_text(encoding="utf-8").splitlines():
                try:
                    rows.append(json.loads(line))
                except json.JSONDecodeError:  # a line cut short by a kill
                    continue
        try:
            recipe = tomllib.loads(run.config.read_text(encoding="utf-8"))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError):
            raise BadInput(f"{run.config} is not valid TOML (the run folder is damaged)") from None
        return cls(label, run, run.read_report(), [r for r in rows if r.get("split") == "train"],
                   [r for r in rows if r.get("split") == "validation"], recipe)

    def setting(self) -> str:
        """The resolved recipe without what tells seeds apart (run.seed, run.name, run.output_dir)."""
        recipe = {table: dict(values) if isinstance(values, dict) else values for table, values in self.recipe.items()}
        for key in ("seed", "name", "output_dir"):
            recipe.get("run", {}).pop(key, None)
        return json.dumps(recipe, sort_keys=True)

    def overview(self) -> dict:
        r = self.report
        last = r.get("last_validation") or {}
        return {"run": self.label, "objective": r.get("objective"), "status": r.get("status"),
                "steps": r.get("step"), "train_seconds": r.get("train_seconds"),
                "select_metric": r.get("select_metric"), "best_metric": r.get("best_metric"),
                "accuracy": last.get("accuracy"), "macro_f1": last.get("macro_f1"), "mcc": last.get("mcc")}


def _labels(paths: list[Path]) -> list[str]:
    """Folder names, or the paths as given where two runs share a name."""
    names = [p.name for p in paths]
    return [str(p) if names.count(p.name) > 1 else p.name for p in paths]


def seed_groups(runs: list[RunSummary]) -> dict[str, list[RunSummary]]:
    """Runs that are seeds of one setting (the same resolved recipe but for the seed), in order of first
    appearance, under the first run's label; a run with no seed twin is a group of one."""
    groups: dict[str, list[RunSummary]] = {}
    for summary in runs:
        twin = next((label for label, members in groups.items() if members[0].setting() == summary.setting()
                     and all(m.recipe.get("run", {}).get("seed") != summary.recipe.get("run", {}).get("seed")
                             for m in members)), None)
        groups.setdefault(twin or summary.label, []).append(summary)
    return groups


def compare(baseline: RunSummary, other: RunSummary, trials: int, seed: int) -> list[dict]:
    """Significance of ``other`` against ``baseline`` on every evaluation set both have predictions for: the same
    key, so the same split and sample (advcl.evaluation.sampling); each row says which sample it used."""
    rows = []
    for data, theirs in other.report.get("evaluations", {}).items():
        ours = baseline.report.get("evaluations", {}).get(data)
        if ours is None:
            continue
        paired = pair_predictions(baseline.run.path / ours["predictions"], other.run.path / theirs["predictions"])
        row = {"data": data, "baseline": baseline.label, "run": other.label, "examples": len(paired.labels),
               "sample": describe_sample(ours)}
        accuracy = mcnemar(paired.a == paired.labels, paired.b == paired.labels)
        row |= {"accuracy_baseline": ours["accuracy"], "accuracy_run": theirs["accuracy"],
                "mcnemar_p": accuracy["p_value"], "mcnemar_method": accuracy["method"]}
        for metric, test in randomisation_test(paired.labels, paired.a, paired.b, paired.num_classes, RANDOMISED,
                                               trials, seed).items():
            row |= {f"{metric}_baseline": ours[metric], f"{metric}_run": theirs[metric], f"{metric}_p": test["p_value"]}
        rows.append(row)
    return rows


def robustness_rows(runs: list[RunSummary]) -> list[dict]:
    rows = []
    for summary in runs:
        for data, attacked in summary.report.get("robustness", {}).items():
            for result in attacked["results"]:
                rows.append({"run": summary.label, "data": data, "sample": describe_sample(attacked),
                             "norm": attacked["norm"], "steps": attacked["steps"],
                             "examples": attacked.get("examples"),
                             "clean_accuracy": attacked["clean_accuracy"], "eps": result["eps"],
                             "accuracy": result["accuracy"], "cosine_distance": result["cosine_distance"]})
    return rows


def attack_rows(runs: list[RunSummary]) -> list[dict]:
    """One row per run and ``advcl attack`` entry (``attack:data``): the numbers of its summary."""
    rows = []
    for summary in runs:
        for name, entry in summary.report.get("attacks", {}).items():
            numbers = {k: v for k, v in entry.get("summary", entry).items() if isinstance(v, (int, float))}
            label = f"{entry['attack']} on {name.partition(':')[2]}" if "attack" in entry else name  # names stand-ins
            rows.append({"run": summary.label, "attack": label, **numbers})
    return rows


def _kind_of_folder(path: Path) -> str:
    """What a folder that is not a run folder looks like, for the note that skips it."""
    if (path / "meta.json").is_file():
        return "a dataset folder (advcl perturb --output writes these)"
    if any(child.is_dir() and (child / "meta.json").is_file() for child in path.iterdir()):
        return "a folder of datasets (advcl perturb --output writes these)"
    return "not a run folder (no config.toml and model/ in it)"


def run_folders(paths: list[Path]) -> tuple[list[Path], dict[str, str]]:
    """The run folders among ``paths`` (in order) and, for each other existing folder, why it was skipped, so that
    ``advcl report runs/*`` works beside the dataset folders ``advcl perturb --output runs/adv/...`` writes.
    A path that does not exist, a file, or a list with no run folder at all is bad input."""
    kept, skipped = [], {}
    for path in paths:
        if RunFolder.is_run(path):
            kept.append(path)
        elif not path.exists():
            raise BadInput(f"{path} does not exist")
        elif not path.is_dir():
            raise BadInput(f"{path} is not a run folder (a file)")
        elif (path / "checkpoints").is_dir() or (path / "config.toml").is_file():
            RunSummary.read(path, path.name)  # a damaged run folder: say what is missing, do not skip it
        else:
            skipped[str(path)] = _kind_of_folder(path)
    if not kept:
        if len(paths) == 1:
            raise BadInput(f"{paths[0]} is not a run folder (no config.toml and model/ in it)")
        raise BadInput(f"none of the {len(paths)} folders is a run folder (each needs config.toml and model/)")
    return kept, skipped


def build_report(paths: list[Path], output: Path, trials: int = DEFAULT_TRIALS, seed: int = 0,
                 overwrite: bool = False) -> dict:
    """Read the runs, test significance, draw the plots and write report.md and report.json into ``output``."""
    if output.is_file() or (output.is_dir() and any(output.iterdir()) and not overwrite):
        raise BadInput(f"output {output} already exists (pass --overwrite to replace its report)")
    paths, skipped = run_folders(paths)
    runs = [RunSummary.read(path, label) for path, label in zip(paths, _labels(paths))]
    result = {
        "skipped": skipped,
        "runs": [s.overview() for s in runs],
        "significance": [row for other in runs[1:] for row in compare(runs[0], other, trials, seed)],
        "robustness": robustness_rows(runs),
        "attacks": attack_rows(runs),
        "plots": [],
        "trials": trials,
        "seed": seed,
    }
    output.mkdir(parents=True, exist_ok=True)
    from advcl.plots import robustness_plot, training_curves

    groups = seed_groups(runs)
    result["seeds"] = {label: [s.label for s in members] for label, members in groups.items() if len(members) > 1}
    if any(s.train or s.validation for s in runs):
        written = training_curves(groups, output / "training_curves.png")
        result["plots"] += [path.name for path in written]
    if result["robustness"]:
        written = robustness_plot(result["robustness"], output / "robustness.png",
                                  {label: [s.label for s in members] for label, members in groups.items()})
        result["plots"] += [path.name for path in written]
    (output / "report.json").write_text(json.dumps(result, indent=2) + "\n")
    (output / "report.md").write_text(markdown(result), encoding="utf-8")
    return result


def _number(value) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:.4f}" if abs(value) >= 1e-3 or value == 0 else f"{value:.1e}"
    return str(value)


def _table(columns: list[str], keys: list[str], rows: list[dict]) -> str:
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(_number(row.get(k)) for k in keys) + " |" for row in rows]
    return "\n".join(lines)


def markdown(result: dict) -> str:
    skipped = [f"Skipped (not run folders): {', '.join(f'`{k}` ({v})' for k, v in result['skipped'].items())}.", ""]
    parts = ["# advcl report", "", "## Runs", "",
             "Clean metrics are the last validation of each run (report.json's `last_validation`).", "",
             *(skipped if result.get("skipped") else []),
             _table(["run", "objective", "status", "steps", "train s", "selected on", "best", "accuracy", "macro-F1",
                     "MCC"],
                    ["run", "objective", "status", "steps", "train_seconds", "select_metric", "best_metric",
                     "accuracy", "macro_f1", "mcc"], result["runs"])]
    if result["significance"]:
        parts += ["", "## Significance against the baseline", "",
                  f"Baseline: the first run. Accuracy: McNemar's test (exact binomial below 25 discordant examples). "
                  f"Macro-F1 and MCC: approximate (Fisher) randomisation, {result['trials']} seeded shuffles "
                  f"(seed {result['seed']}). p < 0.05 marks a difference unlikely under equal performance.", "",
                  "Each comparison pairs the two runs' predictions on the same examples: the sample column says "
                  "which (the whole split, or the seeded random sample of `advcl eval --max-examples`).", "",
                  _table(["data", "sample", "run", "accuracy (base → run)", "p", "macro-F1 (base → run)", "p",
                          "MCC (base → run)", "p"],
                         ["data", "sample", "run", "accuracy", "mcnemar_p", "macro_f1", "macro_f1_p", "mcc", "mcc_p"],
                         [row | {m: f"{row[f'{m}_baseline']:.4f} → {row[f'{m}_run']:.4f}" for m in
                                 ("accuracy", "macro_f1", "mcc")} for row in result["significance"]])]
    if result["robustness"]:
        parts += ["", "## Robustness to the embedding-space attack", "",
                  "Accuracy under PGD on the input embeddings (`advcl eval --robust pgd`) at each radius ε.", "",
                  _table(["run", "data", "sample", "norm", "steps", "clean", "ε", "accuracy", "cosine distance"],
                         ["run", "data", "sample", "norm", "steps", "clean_accuracy", "eps", "accuracy",
                          "cosine_distance"],
                         result["robustness"])]
    if result["attacks"]:
        keys = [k for k in dict.fromkeys(k for row in result["attacks"] for k in row) if k not in ("run", "attack")]
        parts += ["", "## Text-space attacks", "", "`advcl attack` summaries (accuracies and rates in %).", "", _table(["run", "attack", *keys], ["run", "attack", *keys],
                                                          result["attacks"])]
    if result.get("seeds"):
        parts += ["", "## Seeds", "", "Runs that differ only in their seed; the plots show their mean ± one standard "
                  "deviation.", "", _table(["setting", "runs"], ["setting", "runs"],
                                           [{"setting": k, "runs": ", ".join(v)} for k, v in result["seeds"].items()])]
    for plot in (p for p in result["plots"] if p.endswith(".png")):
        vector = [p for p in result["plots"] if p != plot and p.rsplit(".", 1)[0] == plot[:-4]]
        parts += ["", f"![{plot[:-4].replace('_', ' ')}]({plot})"]
        parts += [f"(vector: {', '.join(f'[{v}]({v})' for v in vector)})"] if vector else []
    return "\n".join(parts) + "\n"
