"""The grid file and its expansion into jobs.

A grid file (TOML; paths are relative to the working directory, like every advcl path)::

    output_dir = "runs/results/sst2"      # run folders go here; the grid's own records in OUTPUT_DIR/_grid/
    seeds = [0, 1, 2]                     # run.seed of every run
    baseline = "vanilla"                  # a method or model the report tests every other setting against

    [set]                                 # --set overrides shared by every run (values as in the recipe)
    "data.max_train_examples" = 1000
    [axes]                                # lists of values: every combination is a separate run
    "train.lr" = [5e-5, 2e-5]

    [[method]]                            # one recipe (or a glob: one method per file, named by its stem)
    name = "carl"
    recipe = "recipes/carl_agnews.toml"
    set = { "objective.contrast_start_step" = 32 }
    needs = ["mlm_head"]                  # jobs that must finish first (methods, models, perturbs)

    [[model]]                             # evaluated as it is, never trained (an untouched encoder)
    name = "all-MiniLM-L6-v2"

    [[perturb]]                           # adversarial text made first (advcl perturb), OUTPUT_DIR/NAME
    name = "sst2_pwws"
    attack = "pwws"
    model = "runs/results/sst2/vanilla-s0"
    data = "sst2:train"

    [[evaluate]]                          # on every finished run and model
    data = "sst2:validation"              # clean metrics (per-example predictions kept for the tests)
    robust = "pgd"                        # optional: accuracy under PGD at each eps
    eps = [0.02, 0.075, 0.1]

    [slurm]                               # --executor slurm: resources of each job (flags override)
    partition = "gpu"
    time_min = 240
    gpus = 1

String values of ``set`` may name ``{seed}`` and ``{output_dir}``. A run is named from what sets it apart:
``METHOD[-AXIS_VALUE...]-sSEED`` (:func:`run_name`), so the same grid always gives the same folders.
"""

from __future__ import annotations

import dataclasses
import fnmatch
import glob
import itertools
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from advcl.config.validate import RecipeError, build
from advcl.errors import BadInput

STATE_FOLDER = "_grid"  # OUTPUT_DIR/_grid/JOB/: each evaluation's result, each step's log, a failure's record


class GridError(BadInput):
    """A grid file that cannot run: one line naming the file and the key."""


@dataclass
class Method:
    recipe: str
    name: str = ""
    set: dict[str, Any] = field(default_factory=dict)
    needs: list[str] = field(default_factory=list)
    seeds: list[int] = field(default_factory=list)  # empty: the grid's seeds
    evaluate: bool = True  # false: trained for another method (a generator), left out of evaluations and report


@dataclass
class Model:
    name: str
    path: str = ""  # default: the name (a shipped encoder, a model folder, a hub id)


@dataclass
class Perturb:
    name: str
    attack: str
    model: str
    data: str
    num_examples: int = 1000
    seed: int = 0


@dataclass
class Evaluation:
    name: str = ""  # default: from what it evaluates (see Evaluation.label)
    data: str = ""  # a classification split: clean metrics, or with robust/attack the attacked split
    suite: Literal["", "sts", "transfer"] = ""
    attack: str = ""  # a text attack (advcl attack) on data
    robust: str = ""  # an embedding-space attack (advcl eval --robust) on data
    eps: list[float] = field(default_factory=list)
    steps: int = 0
    norm: Literal["", "l2", "linf"] = ""
    checkpoint: Literal["best", "last"] = "best"
    max_examples: int = 0  # eval and suites: a seeded sample (0 = all)
    num_examples: int = 100  # attack: the seeded sample
    seed: int = 0  # attack: the sample's and the attack's seed
    tasks: str = ""  # suites: comma-separated tasks (default: the suite's own)
    protocol: Literal["senteval", "fast"] = "senteval"
    max_length: int = 0  # suites and attacks: truncate at this many tokens (0 = where the model truncates)

    @property
    def kind(self) -> str:
        return "suite" if self.suite else "attack" if self.attack else "robust" if self.robust else "clean"

    @property
    def label(self) -> str:
        if self.name:
            return self.name
        sample = f"@{self.max_examples}" if self.max_examples else ""
        return {"suite": f"{self.suite}{sample}", "attack": f"{self.attack}:{self.data}",
                "robust": f"{self.robust}:{self.data}{sample}", "clean": f"{self.data}{sample}"}[self.kind]

    def check(self, where: str) -> None:
        if bool(self.data) == bool(self.suite):
            raise GridError(f"'{where}' needs exactly one of 'data' (a split) and 'suite' (sts or transfer)")
        if self.attack and self.robust:
            raise GridError(f"'{where}': 'attack' (text) and 'robust' (embeddings) are separate evaluations")
        if not self.robust and (self.eps or self.steps or self.norm):
            raise GridError(f"'{where}': 'eps', 'steps' and 'norm' set the embedding-space attack: "
                            "add robust = \"pgd\"")
        if any(e <= 0 for e in self.eps) or self.steps < 0 or self.max_examples < 0 or self.num_examples < 1:
            raise GridError(f"'{where}': eps must be positive, steps and max_examples at least 0, "
                            "num_examples at least 1")
        if self.max_length < 0 or (self.max_length and self.kind not in ("suite", "attack")):
            raise GridError(f"'{where}': max_length (at least 1) goes with a suite or a text attack; a classifier "
                            "is evaluated at the length it was trained with")


@dataclass
class Slurm:
    partition: str = ""
    time_min: int = 120
    gpus: int = 0
    cpus: int = 0  # per job; 0 = --threads
    mem_gb: int = 0  # 0 = the partition's default


@dataclass
class GridFile:
    output_dir: str
    seeds: list[int] = field(default_factory=lambda: [0])
    baseline: str = ""
    set: dict[str, Any] = field(default_factory=dict)
    axes: dict[str, Any] = field(default_factory=dict)
    method: list[Method] = field(default_factory=list)
    model: list[Model] = field(default_factory=list)
    perturb: list[Perturb] = field(default_factory=list)
    evaluate: list[Evaluation] = field(default_factory=list)
    slurm: Slurm = field(default_factory=Slurm)


@dataclass
class Job:
    """One unit of work: a run (train, then evaluate), a model (evaluate) or a perturb (make adversarial text)."""

    name: str
    kind: Literal["run", "model", "perturb"]
    setting: str  # what the report groups over seeds: the method with its axis values, or the model's name
    method: str = ""  # the method (or model) alone: a setting's baseline is the baseline method at its axis values
    seed: int | None = None
    recipe: str = ""
    overrides: list[str] = field(default_factory=list)
    model: str = ""  # what the evaluations load: the run folder, or the model
    needs: list[str] = field(default_factory=list)  # job names
    evaluations: list[Evaluation] = field(default_factory=list)
    perturb: Perturb | None = None


@dataclass
class Grid:
    path: Path
    spec: GridFile
    jobs: list[Job]

    @property
    def output_dir(self) -> Path:
        return Path(self.spec.output_dir)

    @property
    def state_dir(self) -> Path:
        return self.output_dir / STATE_FOLDER

    def job(self, name: str) -> Job:
        return next(j for j in self.jobs if j.name == name)

    def select(self, patterns: list[str]) -> list[Job]:
        """The jobs whose name, setting or method matches one of the shell patterns (``simcse``, ``rse-s*``), and
        every job they need, in the grid's order; all jobs for no pattern. A pattern matching nothing is a
        GridError."""
        if not patterns:
            return list(self.jobs)
        chosen: set[str] = set()
        for pattern in patterns:
            matched = [j.name for j in self.jobs
                       if any(fnmatch.fnmatchcase(text, pattern) for text in (j.name, j.setting, j.method))]
            if not matched:
                raise GridError(f"--only {pattern!r} matches no job of {self.path} (jobs: "
                                f"{', '.join(j.name for j in self.jobs)})")
            chosen.update(matched)
        pending = list(chosen)
        while pending:  # what the chosen jobs need, transitively
            for need in self.job(pending.pop()).needs:
                if need not in chosen:
                    chosen.add(need)
                    pending.append(need)
        return [j for j in self.jobs if j.name in chosen]


def flatten(table: dict, prefix: str = "") -> dict[str, Any]:
    """``{"data": {"max_train_examples": 1}}`` and ``{"data.max_train_examples": 1}`` alike -> dotted keys."""
    flat = {}
    for key, value in table.items():
        dotted = f"{prefix}{key}"
        if isinstance(value, dict):
            flat |= flatten(value, f"{dotted}.")
        else:
            flat[dotted] = value
    return flat


def override(key: str, value: Any) -> str:
    """A ``--set`` text whose value parses back to ``value`` (TOML)."""
    import tomli_w

    return f"{key}={tomli_w.dumps({'v': value})[4:].strip()}"


def _fill(value: Any, seed: int, output_dir: str) -> Any:
    return value.replace("{seed}", str(seed)).replace("{output_dir}", output_dir) if isinstance(value, str) else value


def _value_text(value: Any) -> str:
    text = f"{value:g}" if isinstance(value, float) else str(value).lower() if isinstance(value, bool) else str(value)
    return re.sub(r"[^A-Za-z0-9.+-]+", "_", text).strip("_") or "_"


def axis_labels(keys: list[str]) -> dict[str, str]:
    """Each axis by its last key part, or by the whole dotted key (dots as _) where two axes share a last part."""
    leaves = [k.rsplit(".", 1)[-1] for k in keys]
    return {k: leaf if leaves.count(leaf) == 1 else k.replace(".", "_") for k, leaf in zip(keys, leaves)}


def run_name(method: str, axis_values: dict[str, Any], labels: dict[str, str], seed: int) -> str:
    """``carl-lr_5e-05-s1``: the method, each axis as LABEL_VALUE in the grid file's order, then the seed."""
    return "-".join([method, *(f"{labels[k]}_{_value_text(v)}" for k, v in axis_values.items()), f"s{seed}"])


def _methods(spec: GridFile) -> list[tuple[str, Method]]:
    """(name, method) per method entry, a glob giving one per matching file (sorted, named by the stem)."""
    named = []
    for i, method in enumerate(spec.method):
        where = f"method[{i}]"
        if any(c in method.recipe for c in "*?["):
            files = sorted(glob.glob(method.recipe))
            if not files:
                raise GridError(f"'{where}.recipe' = {method.recipe!r} matches no file")
            if method.name:
                raise GridError(f"'{where}': a glob gives one method per file, named by its stem: drop 'name'")
            named += [(Path(f).stem, dataclasses.replace(method, recipe=f)) for f in files]
        else:
            if not Path(method.recipe).is_file():
                raise GridError(f"'{where}.recipe': recipe not found: {method.recipe}")
            named.append((method.name or Path(method.recipe).stem, method))
    return named


def expand(spec: GridFile, path: Path) -> list[Job]:
    """Every job of the grid, in order: perturbs, then methods × axis values × seeds, then models."""
    shared = flatten(spec.set)
    axes = flatten(spec.axes)
    for key, values in axes.items():
        if not isinstance(values, list) or not values:
            raise GridError(f"'axes.{key}' must be a non-empty list of values, got {values!r}")
    labels = axis_labels(list(axes))
    output_dir = spec.output_dir
    jobs = [Job(p.name, "perturb", p.name, p.name, model=p.model, perturb=p) for p in spec.perturb]
    methods = _methods(spec)
    names_of = {name: [] for name, _ in methods}
    for name, method in methods:
        for combination in itertools.product(*axes.values()):
            axis_values = dict(zip(axes, combination))
            setting = run_name(name, axis_values, labels, 0).rsplit("-s", 1)[0]
            for seed in method.seeds or spec.seeds:
                run = run_name(name, axis_values, labels, seed)
                values = shared | axis_values | flatten(method.set)
                overrides = [override(k, _fill(v, seed, output_dir)) for k, v in values.items()]
                overrides += [override("run.name", run), override("run.output_dir", output_dir),
                              override("run.seed", seed)]
                jobs.append(Job(run, "run", setting, name, seed, method.recipe, overrides, str(Path(output_dir) / run),
                                list(method.needs), spec.evaluate if method.evaluate else []))
                names_of[name].append(run)
    jobs += [Job(m.name, "model", m.name, m.name, model=m.path or m.name, evaluations=spec.evaluate)
             for m in spec.model]
    known = {j.name for j in jobs} | set(names_of)
    for job in jobs:
        unknown = [n for n in job.needs if n not in known]
        if unknown:
            raise GridError(f"{path}: '{job.setting}' needs {unknown[0]!r}, which is no method, model or perturb")
        job.needs = [run for n in job.needs for run in needed_runs(names_of.get(n, [n]), job)]
    seen: set[str] = set()
    for job in jobs:
        if Path(job.name).is_absolute() or ".." in Path(job.name).parts:  # its results go to _grid/NAME
            raise GridError(f"{path}: {job.name!r} is no name for a method, model or perturb (its results would "
                            "land outside output_dir): give a plain name, and a [[model]]'s folder as 'path'")
        if job.name in seen:
            raise GridError(f"{path}: two jobs are named {job.name!r} "
                            "(methods, models and perturbs need distinct names)")
        seen.add(job.name)
    return jobs


def needed_runs(runs: list[str], job: Job) -> list[str]:
    """The runs of a needed method that ``job`` waits for: those its settings name (RobustSentEmbed's
    ``objective.generator = "{output_dir}/mlm_head-s{seed}"`` names its own seed's generator, a fixed ``-s0`` names
    that one), else all of them."""
    named = [run for run in runs if any(re.search(rf"(?<![\w.-]){re.escape(run)}(?![\w.-])", o) for o in job.overrides)]
    return named or runs


def _check_recipes(jobs: list[Job], path: Path) -> None:
    """Each run's recipe with its overrides, validated as `advcl train` would before anything runs."""
    from advcl.config.recipe import check_readout, load_recipe

    for job in jobs:
        if job.kind != "run":
            continue
        try:
            check_readout(load_recipe(job.recipe, job.overrides))
        except BadInput as exc:
            raise GridError(f"{path}: run {job.name} ({job.recipe}): {exc}") from None


def load_grid(path: str | Path, check_recipes: bool = True, baseline: str | None = None) -> Grid:
    """Read, validate and expand a grid file; a mistake is a GridError naming the file and key. ``baseline``
    replaces the file's (``advcl grid report --baseline``: test every setting against another one)."""
    path = Path(path)
    if not path.is_file():
        raise GridError(f"grid file not found: {path}")
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise GridError(f"grid file {path} is not valid TOML: {exc}") from None
    try:
        spec = build(GridFile, data)
    except RecipeError as exc:
        raise GridError(f"{path}: {str(exc).replace('recipe key', 'grid key')}") from None
    if baseline is not None:
        spec.baseline = baseline
    if not spec.method and not spec.model:
        raise GridError(f"{path}: no [[method]] or [[model]] to run")
    if not spec.seeds or len(set(spec.seeds)) != len(spec.seeds):
        raise GridError(f"{path}: 'seeds' must be distinct integers, at least one")
    labels = [e.label for e in spec.evaluate]
    for i, evaluation in enumerate(spec.evaluate):
        try:
            evaluation.check(f"evaluate[{i}]")
        except GridError as exc:
            raise GridError(f"{path}: {exc}") from None
        if labels.count(evaluation.label) > 1:
            raise GridError(f"{path}: two evaluations are named {evaluation.label!r}: give one a 'name'")
    jobs = expand(spec, path)
    settings = {j.method for j in jobs if j.evaluations}
    if spec.baseline and spec.baseline not in settings:
        given = f"--baseline {baseline!r}" if baseline is not None else f"{path}: 'baseline' = {spec.baseline!r}"
        raise GridError(f"{given} is no evaluated setting "
                        f"(one of {', '.join(sorted(settings))})")
    if check_recipes:
        _check_recipes(jobs, path)
    return Grid(path, spec, jobs)
