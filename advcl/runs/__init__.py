"""The run folder, the unit of output, and loading a trained model from it (or from a model folder).

    RUN/config.toml      the fully resolved recipe
    RUN/model/           the architecture (config.json, label names) and the tokenizer
    RUN/checkpoints/     step-NNNNNNN/ folders (see advcl.runs.checkpoints)
    RUN/metrics.jsonl    one JSON object per log or evaluation
    RUN/report.json      status and results, rewritten as the run goes

A new run folder is written under a hidden name beside its place (``.NAME.new-PID``) and renamed into place
with config.toml and model/ complete, so a kill leaves either no run or a whole one. ``--overwrite`` renames
the previous run aside (``.NAME.replaced-PID``); the caller removes it once the new run can start
(:meth:`RunFolder.discard_replaced`) or puts it back when it cannot (:meth:`RunFolder.restore_replaced`).
"""

from __future__ import annotations

import glob
import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from advcl.errors import BadInput, RunFailed
from advcl.modeling.encoder import EncoderClassifier, classifier_pooling
from advcl.runs.checkpoints import checkpoint_name, latest_checkpoint, read_json, read_tensors
from advcl.runtime.atomic import atomic_path, write_text


def _process_runs(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


class RunFolder:
    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.config = self.path / "config.toml"
        self.model_dir = self.path / "model"
        self.checkpoints = self.path / "checkpoints"
        self.metrics = self.path / "metrics.jsonl"
        self.report = self.path / "report.json"
        self.trackers: list = []  # advcl.tracking: each is handed every metrics row as it is written
        self.replaced: Path | None = None  # the previous run, renamed aside by write_run_folder(replace=True)

    @staticmethod
    def is_run(path: str | Path) -> bool:
        return (Path(path) / "config.toml").is_file() and (Path(path) / "model").is_dir()

    def model_config(self):
        """The transformers configuration in ``model/config.json``; an unreadable one is a one-line BadInput."""
        from transformers import AutoConfig

        try:
            return AutoConfig.from_pretrained(self.model_dir)
        except (OSError, ValueError, KeyError, TypeError) as exc:
            reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise BadInput(f"{self.model_dir / 'config.json'} is not a readable model configuration ({reason})") from None

    def untrained_model(self, config=None):
        """(a sequence-classification model built from ``config``, by default ``model/config.json``, its weights
        fresh for a checkpoint to fill; the tokenizer in ``model/``)."""
        from transformers import AutoModelForSequenceClassification

        from advcl.modeling.loading import load_tokenizer

        hf = AutoModelForSequenceClassification.from_config(self.model_config() if config is None else config)
        return hf, load_tokenizer(str(self.model_dir))

    def _sibling(self, purpose: str) -> Path:
        return self.path.with_name(f".{self.path.name}.{purpose}-{os.getpid()}")

    def check_replaceable(self, overwrite: bool) -> None:
        """Refuse to start a run where ``self.path`` exists, unless ``overwrite`` and it is a run folder."""
        if not overwrite:
            state = "" if self.is_run(self.path) else " (a run stopped before its model/ folder was written)"
            raise BadInput(f"run folder {self.path} already exists{state}: resume it (--resume {self.path}), "
                           "pass --overwrite to replace it, or set run.name")
        if not self.path.is_dir() or not self.config.is_file():
            raise BadInput(f"--overwrite replaces only a run folder (one with a config.toml); {self.path} is not "
                           "one, so it is left alone: set run.name or run.output_dir")

    def write_run_folder(self, config_toml: str, model_config, tokenizer, replace: bool = False) -> None:
        """Write config.toml and model/ (architecture and tokenizer) so that they appear complete or not at all.

        A folder that exists and is not being replaced is a run stopped before model/ was written: only model/
        is added. Disk full or any other write error is a failed run (exit 1); what was half written is removed.
        """
        if self.path.exists() and not replace:
            staging, final = self.path / f".model.new-{os.getpid()}", self.model_dir
        else:
            staging, final = self._sibling("new"), self.path
        shutil.rmtree(staging, ignore_errors=True)
        try:
            staging.mkdir(parents=True)
            if final == self.path:
                (staging / self.config.name).write_text(config_toml, encoding="utf-8")
                model_dir = staging / self.model_dir.name
            else:
                model_dir = staging
            model_config.save_pretrained(model_dir)
            tokenizer.save_pretrained(model_dir)
            if final == self.path and final.exists():
                self.replaced = self._sibling("replaced")
                os.rename(self.path, self.replaced)
            os.rename(staging, final)
        except OSError as exc:
            shutil.rmtree(staging, ignore_errors=True)
            self.restore_replaced()
            raise RunFailed(f"could not write the run folder {self.path} ({exc.strerror or exc}); "
                            "nothing was changed") from None
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            self.restore_replaced()
            raise

    def _left_by_killed_process(self, purpose: str) -> list[Path]:
        """Hidden siblings ``.NAME.PURPOSE-PID`` whose process no longer runs (it was killed mid-way)."""
        left = []
        for sibling in self.path.parent.glob(f".{glob.escape(self.path.name)}.{purpose}-*"):
            pid = sibling.name.rpartition("-")[2]
            if pid.isdigit() and not _process_runs(int(pid)):
                left.append(sibling)
        return sorted(left)

    def recover_interrupted_replace(self) -> list[str]:
        """Undo what a killed (SIGKILL, power loss) ``--overwrite`` left beside this run: its half-built new run is
        removed, and the previous run it had renamed aside is put back where no run stands now, else kept under its
        hidden name and named. One line per action, for the user."""
        said = []
        for staging in self._left_by_killed_process("new"):
            shutil.rmtree(staging, ignore_errors=True)
            said.append(f"removed {staging}, a run folder an interrupted command had not finished writing")
        for previous in self._left_by_killed_process("replaced"):
            if not self.path.exists():
                os.rename(previous, self.path)
                said.append(f"put back {self.path}: an interrupted --overwrite had moved it to {previous.name}")
            else:
                said.append(f"the run an interrupted --overwrite replaced is kept at {previous}: move it back over "
                            f"{self.path} or delete it")
        return said

    def restore_replaced(self) -> None:
        """Put the run that ``write_run_folder`` renamed aside back in place (the new one could not start)."""
        if self.replaced is None:
            return
        if self.replaced.exists():
            if self.path.exists():
                shutil.rmtree(self.path)
            os.rename(self.replaced, self.path)
        self.replaced = None

    def discard_replaced(self) -> None:
        """Delete the previous run that the new one (now able to start) replaces."""
        if self.replaced is not None:
            shutil.rmtree(self.replaced, ignore_errors=True)
            self.replaced = None

    def read_report(self) -> dict:
        if not self.report.is_file():
            return {}
        try:
            report = json.loads(self.report.read_text(encoding="utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise BadInput(f"{self.report} is not valid JSON ({exc}): repair or delete it") from None
        if not isinstance(report, dict):
            raise BadInput(f"{self.report} is not a JSON object: repair or delete it")
        return report

    def write_report(self, report: dict) -> None:
        """Replace report.json atomically; on a full disk, write over its bytes in place (the blocks it holds)."""
        data = (json.dumps(report, indent=2) + "\n").encode()
        try:
            with atomic_path(self.report) as tmp:
                tmp.write_bytes(data)
        except OSError:
            with self.report.open("r+b" if self.report.is_file() else "wb") as handle:
                handle.write(data)
                handle.truncate()

    def record(self, data: dict, section: str | None = None) -> None:
        """What every command keeps in report.json: merge ``data`` into its top level, or into its ``section``
        table (``evaluations``, ``robustness``, ``attacks``), keeping everything else other commands wrote."""
        report = self.read_report()
        if section is None:
            report |= data
        else:
            report[section] = report.get(section, {}) | data
        self.write_report(report)

    def append_metrics(self, row: dict) -> None:
        with self.metrics.open("a", encoding="utf-8") as handle:
            handle.write(json.dumps(row) + "\n")
        for tracker in self.trackers:  # after the source of truth
            tracker.log(row)

    def truncate_metrics(self, last_step: int) -> None:
        """Drop rows logged after ``last_step`` (a resumed run logs them again)."""
        if not self.metrics.is_file():
            return
        try:
            text = self.metrics.read_text(encoding="utf-8")
        except UnicodeDecodeError as exc:
            raise BadInput(f"{self.metrics} is not valid UTF-8 (byte {exc.start}): repair or delete it") from None
        kept = []
        for line in text.splitlines():
            try:
                row = json.loads(line)
            except json.JSONDecodeError:  # a line cut short by a kill
                continue
            if row.get("step", 0) <= last_step:
                kept.append(line + "\n")
        write_text(self.metrics, "".join(kept))

    def checkpoint(self, which: str = "best") -> Path:
        """The checkpoint folder to use: ``best`` (falls back to the latest) or ``last``."""
        latest = latest_checkpoint(self.checkpoints)
        if latest is None:
            raise BadInput(f"run {self.path} has no finished checkpoint yet (train it, or resume it)")
        if which == "best":
            best = read_json(latest / "state.json").get("best_step")
            if isinstance(best, int) and (self.checkpoints / checkpoint_name(best)).is_dir():
                return self.checkpoints / checkpoint_name(best)
        return latest


def refuse_run_folder(output: Path, option: str = "--output") -> None:
    """A command writing ``output`` never writes over a run folder, or into one (an output named ``model`` there
    would replace the run's model/): refuse, in one line, an ``output`` that is or lies inside a run folder."""
    target = output.resolve()
    inside = next((p for p in (target, *target.parents) if (p / "config.toml").is_file()), None)
    if inside is not None:
        where = "" if inside == target else "inside "
        raise BadInput(f"{option} {output} is {where}the run folder {inside}, which only train writes; "
                       "choose another folder")


@dataclass
class LoadedModel:
    model: EncoderClassifier
    tokenizer: object
    label_names: list[str] | None
    pooling: str
    max_length: int
    source: str  # what was loaded, for reports

    def length(self, requested: int) -> int:
        """``requested`` tokens, or the model's own length for 0; more than the model has positions for is a
        one-line BadInput (inputs that long would index past its position embeddings)."""
        from advcl.config.recipe import model_positions

        positions = model_positions(self.model.hf.config)
        if requested and positions is not None and requested > positions:
            raise BadInput(f"--max-length {requested} is more than the {positions} tokens {self.source} reads")
        return requested or self.max_length


def load_model(path: str, which: str = "best", pooling: str | None = None, require_head: bool = False) -> LoadedModel:
    """Load a run folder (its best or last checkpoint) or a Hugging Face model folder / name. A model folder pools
    and truncates as its sentence-transformers config declares (1_Pooling/config.json, sentence_bert_config.json),
    else [CLS] and the tokenizer's limit (at most 512 tokens)."""
    from advcl.config.recipe import load_recipe
    from advcl.modeling.loading import load_classifier, packaged_max_length, packaged_pooling, resolve_model_path

    if RunFolder.is_run(path):
        run = RunFolder(path)
        recipe = load_recipe(run.config)
        folder = run.checkpoint(which)
        config = run.model_config()
        try:
            labels = [config.id2label[i] for i in range(config.num_labels)]
        except (KeyError, TypeError):
            raise BadInput(f"{run.model_dir / 'config.json'} does not name each of its {config.num_labels} labels "
                           "(id2label)") from None
        hf, tokenizer = run.untrained_model(config)
        model = EncoderClassifier(hf, pooling or recipe.model.pooling, classifier_pooling(recipe))
        weights = folder / "model.safetensors"
        try:
            model.load_weights(read_tensors(weights))
        except RuntimeError as exc:
            raise BadInput(f"{weights} does not fit the model in {run.model_dir} "
                           f"({str(exc).strip().splitlines()[0]})") from None
        model.eval()
        return LoadedModel(model, tokenizer, labels, model.pooling, recipe.model.max_length, str(folder))
    if Path(path).is_dir() and (Path(path) / "checkpoints").is_dir():
        raise BadInput(f"{path} looks like a run folder but has no config.toml or model/ folder")
    resolved = resolve_model_path(path)
    if require_head:
        _check_head(resolved)
    hf, tokenizer, resolved = load_classifier(path)
    hf.eval()
    config = hf.config
    labels = [config.id2label[i] for i in range(config.num_labels)]
    pooling = pooling or packaged_pooling(resolved) or "cls"
    limit = min(getattr(tokenizer, "model_max_length", 512) or 512, 512)
    max_length = min(packaged_max_length(resolved) or limit, limit)
    return LoadedModel(EncoderClassifier(hf, pooling), tokenizer, labels, pooling, max_length, resolved)


def _check_head(path: str) -> None:
    """Refuse a model folder whose weights have no trained classification head."""
    from safetensors import safe_open

    weights = Path(path) / "model.safetensors"
    if not weights.is_file():
        return
    with safe_open(weights, "pt") as handle:
        names = list(handle.keys())
    if not any(n.startswith(("classifier.", "score.", "lm_head.")) or ".classifier." in n for n in names):
        raise BadInput(f"model {path} has no trained classification head (an encoder only): train it first")
