"""What ``advcl attack`` and ``advcl perturb`` share: from names and options to a running, resumable attack."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from advcl.attacks.runner import Settings, Shard, open_folder, run
from advcl.attacks.tasks import AttackTask
from advcl.data.dataset import TextDataset
from advcl.errors import BadInput, Interrupted

# The goal function hands the victim every uncached query of a step at once; the victim batches them itself.
ALL_QUERIES = 2**31


@dataclass
class Job:
    """A built attack on a seeded sample, and the folder its results go to."""

    component: object  # the attack component (see advcl.attacks.recipes)
    task: AttackTask  # the attack goal (advcl.attacks.goals): a label flip, or AdvSTS on an STS sample
    attack: object  # the textattack.Attack
    dataset: TextDataset  # the sample, in source order
    settings: Settings
    folder: Path
    shard: Shard
    done: dict[int, dict]  # finished rows by sample position
    runtime: str  # what runs the victim: onnx (onnxruntime) or torch

    @property
    def description(self) -> str:
        from advcl.attacks.recipes import describe

        return describe(self.component, self.task.goal)


def component_for(name: str, mlm: str):
    """The registered attack component ``name``, configured (unknown names suggest the closest)."""
    from advcl.plugins import registry

    cls = registry().get("attack", name).cls
    options = {"mlm": mlm} if mlm else {}
    known = {f.name for f in dataclasses.fields(cls.Config)}
    if set(options) - known:
        raise BadInput(f"--mlm is for attacks that take a masked language model (bae, bert-attack), not {name}")
    return cls(cls.Config(**options))


RUNTIMES = ("auto", "onnx", "torch")


def runtime_for(choice: str, device) -> str:
    """``auto``: onnxruntime on CPU where it and the ONNX exporter are installed, else PyTorch."""
    import importlib.util

    if choice not in RUNTIMES:
        raise BadInput(f"--runtime must be one of {', '.join(RUNTIMES)}, got {choice!r}")
    installed = all(importlib.util.find_spec(m) for m in ("onnxruntime", "onnxscript", "onnx"))
    if choice == "onnx" and not installed:
        raise BadInput("--runtime onnx needs the packages onnxruntime, onnx and onnxscript: "
                       "pip install onnxruntime onnx onnxscript")
    if choice == "onnx" and device.type != "cpu":
        raise BadInput("--runtime onnx runs on the CPU only: use --device cpu, or --runtime torch")
    if choice == "auto":
        return "onnx" if installed and device.type == "cpu" else "torch"
    return choice


@dataclass(frozen=True)
class AttackRequest:
    """What ``advcl attack`` and ``advcl perturb`` ask :func:`prepare` for.

    ``default_output(settings)`` names the folder when ``output`` is None. With ``advsts``, an STS split is attacked
    as AdvSTS (:mod:`advcl.attacks.advsts`; ``sts_margin`` None: 20 % of its declared range) against the model's
    sentence embedding; without it, an STS split is refused (``advcl perturb`` builds classification datasets).
    """

    attack: str
    model: str
    data: str
    num_examples: int
    seed: int
    query_budget: int
    model_batch_size: int
    max_length: int
    mlm: str = ""
    output: Path | None = None
    default_output: Callable[[Settings], Path] | None = None
    shard: Shard = Shard()
    overwrite: bool = False
    checkpoint: str = "best"
    device: str = "auto"
    runtime: str = "auto"
    advsts: bool = False
    sts_margin: float | None = None


def prepare(request: AttackRequest) -> Job:
    """Load the model and the sample, check resources, build the attack and open (or resume) its folder."""
    from advcl.attacks.goals import goal_for
    from advcl.attacks.resources import activate, require, resources_dir
    from advcl.attacks.victim import onnx_session
    from advcl.data.catalogue import task_of_spec
    from advcl.runtime.devices import pick_device
    from advcl.runtime.progress import stderr

    component = component_for(request.attack, request.mlm)
    folder_of_resources = resources_dir()
    require(folder_of_resources, component.needs, request.attack)
    task = goal_for(task_of_spec(request.data), request.data)
    target = task.load(request)
    loaded, sample = target.loaded, target.sample
    options = dataclasses.asdict(component.config) | target.options
    source = str(Path(loaded.source).resolve()) if Path(loaded.source).exists() else loaded.source
    settings = Settings(request.attack, options, source, request.data, len(sample), request.seed, request.query_budget,
                        loaded.length(request.max_length))
    dev = pick_device(request.device)
    runtime = runtime_for(request.runtime, dev)
    activate(folder_of_resources)
    log = lambda message: stderr.print(message, highlight=False)  # noqa: E731
    session = onnx_session(loaded, folder_of_resources / "victims", log) if runtime == "onnx" else None
    victim = task.victim(loaded.model, loaded.tokenizer, settings.max_length, request.model_batch_size, dev, session)
    built = task.aim(component.build(victim), victim, options)
    built.goal_function.batch_size = ALL_QUERIES
    if request.query_budget:
        built.goal_function.query_budget = request.query_budget
    folder = request.output or request.default_output(settings)
    done = open_folder(folder, settings, request.overwrite)
    return Job(component, task, built, sample, settings, folder, request.shard, done, runtime)


def execute(job: Job) -> list[dict]:
    """Attack what the shard still lacks, with progress on stderr; Ctrl-C keeps every finished result."""
    from advcl.runtime.progress import simple_progress
    from advcl.interrupts import raising_keyboard_interrupt

    positions = job.shard.positions(len(job.dataset))
    finished = sum(p in job.done for p in positions)
    with simple_progress(job.description) as progress:
        task = progress.add_task("attack", total=len(positions), completed=finished)
        try:
            with raising_keyboard_interrupt():
                return run(job.attack, job.task, job.dataset, job.folder, job.settings.seed, job.shard, job.done,
                           on_row=lambda row: progress.advance(task))
        except KeyboardInterrupt:
            count = sum(p in job.done for p in positions)
            raise Interrupted(f"attack interrupted after {count} of {len(positions)} examples; "
                              f"the results are in {job.folder}: run the same command again to resume") from None


def sample_rows(job: Job) -> list[dict] | None:
    """Every row of the whole sample in order, or None while some example (of any shard) is unfinished."""
    if any(p not in job.done for p in range(len(job.dataset))):
        return None
    return [job.done[p] for p in range(len(job.dataset))]
