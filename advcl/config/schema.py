"""The recipe schema: every field a recipe may set, its type and its default."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from advcl.config.validate import component


@dataclass
class RunConfig:
    name: str = ""  # run folder name; default: the recipe file's stem
    output_dir: str = "runs"  # the run folder is output_dir/name
    seed: int = 42
    deterministic: bool = True  # torch deterministic algorithms (bit-identical resume on CPU)
    device: Literal["auto", "cpu", "cuda"] = "auto"
    precision: Literal["fp32", "bf16", "fp16"] = "fp32"  # bf16/fp16 autocast on CUDA only
    # experiment trackers fed the metrics.jsonl rows as they are written (advcl/tracking.py; optional extras)
    trackers: list[Literal["tensorboard", "mlflow"]] = field(default_factory=list)


@dataclass
class ModelConfig:
    name: str = "all-MiniLM-L6-v2"  # local folder, hub id, pip-packaged encoder, or an advcl run folder (its encoder)
    # sentence representation used by losses, `embed` and the exports; "auto" = a run folder's own pooling, else what
    # the model folder's sentence-transformers config declares (1_Pooling/config.json), else cls; the resolved
    # recipe holds the choice
    pooling: Literal["auto", "cls", "mean"] = "auto"
    # what the classifier reads: "head" = the architecture's own head (BERT: pooler on [CLS]; exports to plain
    # transformers); "sentence" = a linear classifier on the pooled sentence vector (advcl/modeling/encoder.py)
    classifier_input: Literal["head", "sentence"] = "head"
    # true: allow an objective's contrastive term and its classifier to read different vectors (pooling = "mean"
    # with classifier_input = "head"); otherwise such a recipe is refused
    mixed_readout: bool = False
    max_length: int = 128  # tokens; longer inputs are truncated


@dataclass
class DataConfig:
    train: str = ""  # "name:split" from the catalogue, or a csv/tsv/jsonl/parquet file
    validation: str = ""  # same forms; "" = no periodic evaluation
    text_column: str = "text"  # column names, for user files
    text_pair_column: str = ""  # "" = single-text task (catalogue pair tasks set it themselves)
    label_column: str = "label"
    # the adversarial twin of each text, for objectives trained on real adversarial text (taichi, ada);
    # `advcl perturb` writes these columns (a catalogue or perturb folder always uses these names)
    adv_text_column: str = "adv_text"
    adv_text_pair_column: str = "adv_text_pair"  # pair tasks
    # the attack statuses whose rows train (successful, failed, skipped: the `status` column `advcl perturb`
    # writes); the papers' D_adv is the successful attacks. report.json counts the rows used and dropped.
    adv_statuses: list[str] = field(default_factory=lambda: ["successful"])
    adv_status_column: str = "status"  # user files; "" = no statuses, every row trains
    labels: list[str] = field(default_factory=list)  # label names of a user file; [] = inferred
    max_train_examples: int = 0  # 0 = all; otherwise a seeded random subset
    # N rows of each class, drawn with run.seed (advcl/data/class_sampling.py); a class with fewer keeps all, and
    # report.json names it. 0 = off; not together with max_train_examples; classification data only
    examples_per_class: int = 0
    max_eval_examples: int = 0
    # training batches of similar length (less padding): "on", "off", or "auto" = on except for objectives that
    # take contrastive negatives from the batch (advcl/data/batching.py, group_by_length)
    group_by_length: Literal["auto", "on", "off"] = "auto"


@dataclass
class TrainConfig:
    epochs: int = 3
    max_steps: int = 0  # 0 = epochs decide; otherwise stop after this many optimizer steps
    batch_size: int = 32  # per process; torchrun with N processes trains on N x batch_size rows per pass
    global_batch_size: int = 0  # rows per optimizer step over all processes and accumulation; 0 = not fixed
    eval_batch_size: int = 128
    grad_accum_steps: int = 1
    lr: float = 2e-5
    weight_decay: float = 0.01
    warmup_ratio: float = 0.1
    max_grad_norm: float = 1.0  # 0 = no clipping
    eval_every: int = 0  # optimizer steps; 0 = at the end of every epoch
    save_every: int = 0  # optimizer steps; 0 = at every evaluation
    keep_checkpoints: int = 2  # newest checkpoints kept besides the best one
    # the validation metric that picks the best checkpoint: accuracy / macro_f1 / mcc on a classification
    # split, spearman (x100, cosine of sentence embeddings) on an STS split such as stsb:validation
    select_metric: Literal["accuracy", "macro_f1", "mcc", "spearman"] = "accuracy"
    log_every: int = 10


@dataclass
class Recipe:
    run: RunConfig = field(default_factory=RunConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    objective: object = component("objective", "vanilla")
