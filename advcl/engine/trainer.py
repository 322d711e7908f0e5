"""The training loop shared by every objective.

Order is a pure function of (seed, epoch, step): batches come from ``epoch_batches(seed, epoch)`` (grouped
by length unless ``data.group_by_length`` turns it off) and a checkpoint stores model, objective heads,
optimizer, schedule and every RNG, so a resumed run repeats exactly what the uninterrupted run would have done
(bit-identical on CPU).

Under ``torchrun`` each of the N processes takes its slice of every global batch of N x batch_size rows;
the model and the objective's heads are one DDP module, so gradients are averaged across processes on the
objective's final backward (earlier passes it makes through ``ctx.backward`` and all but the last
accumulation micro-batch run under ``no_sync``). Rank 0 alone logs, shows progress and writes checkpoints.
Decisions that end the loop are taken together: a non-finite loss on any process, or Ctrl-C seen by any, stops
every process after the same step (one collective per step), and rank 0 says why.
"""

from __future__ import annotations

import contextlib
import math
import signal
import time
from dataclasses import dataclass, field

import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from advcl.config.schema import Recipe
from advcl.data.batching import EncodedDataset, epoch_batches, groups_by_length
from advcl.engine import checkpoint as ckpt
from advcl.engine.optim import build_optimizer, linear_schedule
from advcl.engine.validation import Validator
from advcl.errors import BadInput, Interrupted, RunFailed
from advcl.objectives.base import Objective, StepContext
from advcl.runs import RunFolder
from advcl.runs.checkpoints import CorruptCheckpoint, checkpoint_name, latest_checkpoint, prune_checkpoints
from advcl.runtime.devices import autocast, to_device
from advcl.runtime.distributed import any_rank, barrier, broadcast_from_main, gather_objects, world
from advcl.runtime.progress import stderr, training_progress
from advcl.tracking import tracking


@dataclass
class TrainState:
    step: int = 0
    examples_seen: int = 0
    best_step: int | None = None
    best_metric: float | None = None
    train_seconds: float = 0.0
    last_eval: dict = field(default_factory=dict)


class TrainStep(nn.Module):
    """The model and the objective as one module, so that DDP also averages the objective's own heads."""

    def __init__(self, model: nn.Module, objective: Objective):
        super().__init__()
        self.model, self.objective = model, objective

    def forward(self, batch: dict, ctx: StepContext):
        return self.objective.step(batch, self.model, ctx)


def rank_consistent_buffers(module: nn.Module) -> list[str]:
    """Names (in ``module``) of the buffers its submodules declare in ``rank_consistent_buffers``."""
    return [
        f"{prefix}.{name}" if prefix else name
        for prefix, sub in module.named_modules()
        for name in getattr(sub, "rank_consistent_buffers", ())
    ]


class Trainer:
    def __init__(
        self,
        recipe: Recipe,
        run: RunFolder,
        model: torch.nn.Module,
        objective: Objective,
        train_data: EncodedDataset,
        validate: Validator | None,
        device: torch.device,
    ):
        self.recipe, self.run, self.model, self.objective = recipe, run, model, objective
        self.train_data, self.validate, self.device = train_data, validate, device
        cfg = recipe.train
        self.topology = world()
        self.global_batch = cfg.batch_size * self.topology.world_size
        batches = math.ceil(len(train_data) / self.global_batch)
        self.steps_per_epoch = math.ceil(batches / cfg.grad_accum_steps)
        grouped = groups_by_length(recipe.data.group_by_length, objective.in_batch_negatives)
        self.lengths = train_data.lengths() if grouped else None  # tokens per example, to group batches by
        total = self.steps_per_epoch * cfg.epochs if cfg.epochs else cfg.max_steps
        self.total_steps = min(total, cfg.max_steps) if cfg.max_steps else total
        self.eval_every = cfg.eval_every or self.steps_per_epoch
        self.save_every = cfg.save_every or self.eval_every
        self.step_module = TrainStep(model, objective)
        self.runner = self.step_module
        if self.topology.distributed:
            # buffers an objective writes alike on every process itself (CARL's memory banks, hundreds of MB;
            # RobustSentEmbed's token memory) are left out of DDP's broadcast of rank 0's buffers before every
            # forward; they start as rank 0's (each process seeds its own generator, and 𝒱 starts at random)
            consistent = rank_consistent_buffers(self.step_module)
            DistributedDataParallel._set_params_and_buffers_to_ignore_for_model(self.step_module, consistent)
            broadcast_from_main([self.step_module.get_buffer(name) for name in consistent])
            self.runner = DistributedDataParallel(
                self.step_module,
                device_ids=[device.index] if device.type == "cuda" else None,
                find_unused_parameters=True,  # e.g. CARL's head before its contrastive start step
            )
        # PyTorch's fused AdamW kernel exists for CUDA and CPU; on CPU it is ~10x faster than the per-tensor loop
        # (0.11 against 1.1 s of CPU per step for MiniLM's 22.7 M parameters; Hugging Face Trainer uses it too)
        fused = device.type in ("cuda", "cpu")
        self.optimizer = build_optimizer([model, objective], cfg.lr, cfg.weight_decay, fused=fused)
        self.scheduler = linear_schedule(self.optimizer, int(cfg.warmup_ratio * self.total_steps), self.total_steps)
        self.scaler = torch.amp.GradScaler("cuda") if recipe.run.precision == "fp16" else None
        self.state = TrainState()
        self._stop_requested = False  # set by the Ctrl-C handler, on this process
        self._stop_agreed = False  # any process's Ctrl-C, as agreed by all after a step

    # -- checkpoints -------------------------------------------------------------------------------
    def save(self) -> None:
        state = {
            "examples_seen": self.state.examples_seen,
            "best_step": self.state.best_step,
            "best_metric": self.state.best_metric,
            "train_seconds": self.state.train_seconds,
            "last_eval": self.state.last_eval,
            "scheduler": self.scheduler.state_dict(),
            "scaler": self.scaler.state_dict() if self.scaler else None,
        }
        rng_states = gather_objects(ckpt.rng_state(self.device))
        if self.topology.is_main:
            ckpt.save_checkpoint(
                self.run.checkpoints,
                self.state.step,
                self.model.weights(),
                self.objective.state_dict(),
                self.optimizer.state_dict(),
                {**state, "world_size": self.topology.world_size},
                rng_states,
            )
            protect = {checkpoint_name(self.state.best_step)} if self.state.best_step is not None else set()
            prune_checkpoints(self.run.checkpoints, self.recipe.train.keep_checkpoints, protect)
        barrier()

    def restore(self, folder) -> None:
        """Load a checkpoint; one that does not fit this model and objective raises ``CorruptCheckpoint``."""
        saved = ckpt.load_checkpoint(folder, self.topology.rank)
        state = saved["state"]
        if state.get("world_size", 1) != self.topology.world_size:
            raise BadInput(
                f"{folder} was written by {state.get('world_size', 1)} process(es); "
                f"resume it with the same number (now {self.topology.world_size})"
            )
        for file, load in (("model.safetensors", lambda: self.model.load_weights(saved["model"])),
                           ("objective.safetensors", lambda: self.objective.load_state_dict(saved["objective"])),
                           ("optimizer.safetensors", lambda: self.optimizer.load_state_dict(saved["optimizer"])),
                           ("state.json", lambda: self.scheduler.load_state_dict(state["scheduler"]))):
            try:
                load()
            except (RuntimeError, ValueError, KeyError, TypeError) as exc:
                raise CorruptCheckpoint(f"{folder / file} does not fit this run "
                                             f"({str(exc).strip().splitlines()[0]})") from None
        if self.scaler and state.get("scaler"):
            self.scaler.load_state_dict(state["scaler"])
        try:
            self.state = TrainState(
                step=state["step"],
                examples_seen=state["examples_seen"],
                best_step=state["best_step"],
                best_metric=state["best_metric"],
                train_seconds=state["train_seconds"],
                last_eval=state.get("last_eval", {}),
            )
        except KeyError as exc:
            raise CorruptCheckpoint(f"{folder / 'state.json'} lacks {exc}") from None
        ckpt.restore_rng(saved["rng"], saved["rng_meta"], self.device)
        if self.topology.is_main:
            self.run.truncate_metrics(self.state.step)

    # -- the loop ----------------------------------------------------------------------------------
    def _micro_batches(self, step: int) -> list[list[int]]:
        cfg = self.recipe.train
        epoch, k = divmod(step, self.steps_per_epoch)
        if getattr(self, "_epoch", None) != epoch:
            self._epoch = epoch
            self._batches = epoch_batches(
                len(self.train_data), self.global_batch, self.recipe.run.seed, epoch, self.topology.world_size,
                self.lengths,
            )
        rank, size = self.topology.rank, self.topology.world_size
        return [
            batch[rank * len(batch) // size : (rank + 1) * len(batch) // size]
            for batch in self._batches[k * cfg.grad_accum_steps : (k + 1) * cfg.grad_accum_steps]
        ]

    def train_step(self) -> tuple[float, dict, int]:
        """One optimizer step on the micro-batches of step ``state.step`` (the caller advances ``state.step``);
        returns (mean loss, mean logs, examples over all processes). ``bench/gpu_throughput.py`` times this."""
        group = self._micro_batches(self.state.step)

        def backward(loss: torch.Tensor) -> None:
            loss = loss / len(group)
            (self.scaler.scale(loss) if self.scaler else loss).backward()

        ctx = StepContext(step=self.state.step, total_steps=self.total_steps, backward=backward)
        self.step_module.train()
        total_loss, logs, examples, bad = 0.0, {}, 0, None
        for i, indices in enumerate(group):
            batch = to_device(self.train_data.collate(indices), self.device)
            last = i == len(group) - 1
            accumulate = not last and self.topology.distributed
            # no local names the no_sync context: an error's traceback would keep the DDP wrapper alive (see fit)
            with self.runner.no_sync() if accumulate else contextlib.nullcontext():
                with autocast(self.device, self.recipe.run.precision):
                    out = self.runner(batch, ctx)
                value = out.loss.item()
                if not math.isfinite(value):
                    if not self.topology.distributed:
                        self._fail(f"loss became {value} at step {self.state.step + 1}")
                    bad = bad or value  # the other processes are in this step's collectives: finish it with them
                backward(out.loss)
            total_loss += value / len(group)
            for key, v in out.logs.items():
                logs[key] = logs.get(key, 0.0) + v / len(group)
            examples += len(indices) * self.topology.world_size
        if self.topology.distributed:
            self._agree_after_step(bad)
        if self.scaler:
            self.scaler.unscale_(self.optimizer)
        if self.recipe.train.max_grad_norm > 0:
            params = [p for g in self.optimizer.param_groups for p in g["params"]]
            torch.nn.utils.clip_grad_norm_(params, self.recipe.train.max_grad_norm)
        if self.scaler:
            self.scaler.step(self.optimizer)
            self.scaler.update()
        else:
            self.optimizer.step()
        self.scheduler.step()
        self.optimizer.zero_grad(set_to_none=True)
        return total_loss, logs, examples

    def _agree_after_step(self, bad: float | None) -> None:
        """Every process learns whether any saw a non-finite loss or Ctrl-C in this step, and all act alike."""
        nonfinite, self._stop_agreed = any_rank(bad is not None, self._stop_requested)
        if nonfinite:
            values = gather_objects(bad)
            where = [rank for rank, value in enumerate(values) if value is not None]
            value = values[where[0]]
            self._fail(f"loss became {value} at step {self.state.step + 1} "
                       f"(process{'es' if len(where) > 1 else ''} {', '.join(map(str, where))})")

    def _kept(self) -> str:
        last = latest_checkpoint(self.run.checkpoints)  # checkpoints are written only with finite state
        return f"the last good checkpoint {last.name} is kept" if last else "no checkpoint was written yet"

    def _fail(self, what: str):
        raise RunFailed(f"{what}: run stopped; {self._kept()} (try a lower train.lr)")

    def evaluate(self, progress=None) -> dict:
        metrics = self.validate(self.model, progress)
        metric = metrics[self.recipe.train.select_metric]
        if self.state.best_metric is None or metric > self.state.best_metric:
            self.state.best_metric, self.state.best_step = metric, self.state.step
        self.state.last_eval = metrics
        if self.topology.is_main:
            self.run.append_metrics({"step": self.state.step, "split": "validation", **metrics})
        return metrics

    def _report(self, status: str, message: str = "") -> None:
        """Rewrite the training fields of report.json, keeping what other commands added (robustness...).
        A failed run's report is written even on a full disk where it can be (:meth:`RunFolder.write_report`)."""
        if not self.topology.is_main:
            return
        self.run.record(
            {
                "status": status,
                "message": message,
                "recipe": self.recipe.run.name,
                "objective": self.recipe.objective.name,
                "model": self.recipe.model.name,
                "train_data": self.recipe.data.train,
                "validation_data": self.recipe.data.validation,
                "step": self.state.step,
                "total_steps": self.total_steps,
                "examples_seen": self.state.examples_seen,
                "train_examples": len(self.train_data),
                "truncated_train_examples": self.train_data.truncated,
                "train_seconds": round(self.state.train_seconds, 2),
                "select_metric": self.recipe.train.select_metric,
                "best_step": self.state.best_step,
                "best_metric": self.state.best_metric,
                "last_validation": self.state.last_eval,
                "device": str(self.device),
                "processes": self.topology.world_size,
                "threads": torch.get_num_threads(),
            }
        )

    def _on_sigint(self, signum, frame):
        self._stop_requested = True  # with several processes, the next step's collective makes it everyone's stop
        signal.signal(signal.SIGINT, signal.default_int_handler)  # a second Ctrl-C stops at once
        if self.topology.is_main:
            stderr.print("[yellow]Ctrl-C: saving a checkpoint after this step (press again to abort at once)")

    def fit(self) -> dict:
        previous = signal.signal(signal.SIGINT, self._on_sigint)
        try:
            self._report("running")  # from the start: a full disk later can still rewrite it in place
            with tracking(self.recipe, self.run, self.state.step, enabled=self.topology.is_main):
                self._loop()
        except RunFailed as exc:  # a NaN loss or state, a checkpoint that could not be written
            with contextlib.suppress(OSError, BadInput):  # report.json itself unwritable or damaged
                self._report("failed", str(exc))
            raise
        except OSError as exc:  # metrics.jsonl or report.json could not be written (disk full...)
            message = f"could not write to the run folder {self.run.path} ({ckpt.write_error(exc)})"
            with contextlib.suppress(OSError, BadInput):  # report.json itself unwritable or damaged
                self._report("failed", message)
            raise RunFailed(f"{message}: run stopped; {self._kept()}") from None
        finally:
            signal.signal(signal.SIGINT, previous)
            # Free the DDP wrapper now, while the process group lives: an error's traceback keeps this trainer
            # alive past distributed.shutdown(), and a Reducer that then drops the group's last reference waits
            # for gloo's threads while holding the GIL, which one of them needs (a teardown deadlock under load).
            self.runner = self.step_module
        self._report("completed")
        return self.run.read_report()

    def _loop(self) -> None:
        cfg = self.recipe.train
        window_loss, window_steps, window_examples, window_start = 0.0, 0, 0, time.perf_counter()
        lr = self.scheduler.get_last_lr()[0]
        with training_progress(disable=not self.topology.is_main) as progress:
            task = progress.add_task(
                self.recipe.run.name, total=self.total_steps, completed=self.state.step, loss=float("nan"), lr=lr, speed=0.0
            )
            while self.state.step < self.total_steps:
                started = time.perf_counter()
                loss, logs, examples = self.train_step()
                self.state.step += 1
                self.state.examples_seen += examples
                self.state.train_seconds += time.perf_counter() - started
                window_loss, window_steps, window_examples = window_loss + loss, window_steps + 1, window_examples + examples
                speed = window_examples / max(time.perf_counter() - window_start, 1e-9)
                progress.update(task, advance=1, loss=loss, lr=self.scheduler.get_last_lr()[0], speed=speed)
                step = self.state.step
                final = step == self.total_steps
                if (step % cfg.log_every == 0 or final) and self.topology.is_main:
                    self.run.append_metrics(
                        {"step": step, "split": "train", "loss": window_loss / window_steps,
                         "lr": self.scheduler.get_last_lr()[0], "examples_per_s": speed, **logs}
                    )
                    window_loss, window_steps, window_examples, window_start = 0.0, 0, 0, time.perf_counter()
                evaluated = self.validate is not None and (step % self.eval_every == 0 or final)
                if evaluated:
                    metrics = self.evaluate(progress)
                    if self.topology.is_main:
                        progress.console.print(
                            f"step {step}: " + ", ".join(f"{k} {v:.4f}" for k, v in metrics.items() if k != "examples")
                        )
                # one process alone: Ctrl-C stops after this step; several: after the step all agreed to stop
                stop = self._stop_agreed if self.topology.distributed else self._stop_requested
                if evaluated or step % self.save_every == 0 or final or stop:
                    self.save()
                    self._report("running" if not final else "completed")
                if stop and not final:
                    self._report("interrupted", f"stopped by Ctrl-C at step {step}")
                    raise Interrupted(
                        f"interrupted at step {step}; checkpoint saved. Resume: advcl train --resume {self.run.path}"
                    )
