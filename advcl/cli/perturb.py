from __future__ import annotations

import copy
from pathlib import Path

import typer

from advcl.cli.app import CHECKPOINT_OPTION, JSON_OPTION, app, print_json, print_table
from advcl.cli.attack import (
    ATTACK_OPTION,
    BATCH_OPTION,
    DEVICE_OPTION,
    MAX_LENGTH_OPTION,
    MLM_OPTION,
    MODEL_OPTION,
    OVERWRITE_OPTION,
    QUERY_BUDGET_OPTION,
    RUNTIME_OPTION,
    SEED_OPTION,
    SHARD_OPTION,
)
from advcl.completion import choices, component_names, data_specs, robust_perturbers


EMBEDDING_SPACE_DEFAULTS = {"perturber": "pgd", "eps": 0.075}
TEXT_PANEL = "--space text (attack the words)"
EMBEDDING_PANEL = "--space embedding (attack the input embeddings)"


def _in_panel(option, panel: str):
    """A shared option of `advcl attack`, shown under ``panel`` in `advcl perturb --help`."""
    option = copy.copy(option)
    option.rich_help_panel = panel
    return option


@app.command(
    epilog="Examples:\n\n"
    "  advcl perturb --attack pwws --model runs/vanilla_sst2 --data sst2:train --output adv/ --num-examples 8000\n\n"
    "  ADVCL_DATA_DIR=. advcl eval --model runs/vanilla_sst2 --data adv:train   # the catalogue layout\n\n"
    "  advcl perturb -a pwws -m runs/vanilla_sst2 -d sst2:train -o adv/ --shard 3/4   # one of 4 jobs\n\n"
    "  advcl perturb --space embedding --perturber pgd --eps 0.1 --model runs/vanilla_sst2 --data sst2:validation "
    "--output pgd/",
)
def perturb(
    attack: str = typer.Option("", "--attack", "-a", help=ATTACK_OPTION.help, rich_help_panel=TEXT_PANEL,
                               autocompletion=component_names("attack")),
    model: str = MODEL_OPTION,
    data: str = typer.Option(..., "--data", "-d", help="Catalogue split (sst2:train) or a labelled data file.",
                             autocompletion=data_specs),
    output: Path = typer.Option(..., "--output", "-o", help="Dataset folder: OUTPUT/SPLIT.jsonl + meta.json "
                                "(--space embedding: OUTPUT/SPLIT.embedding.safetensors + .jsonl)."),
    space: str = typer.Option("text", "--space", autocompletion=choices("text", "embedding"), help="text: attack the text with --attack, write an adversarial "
                              "dataset; embedding: attack the input embeddings with --perturber, write δ per example."),
    num_examples: int = typer.Option(0, "--num-examples", "-n", min=0,
                                     help="Perturb a seeded random sample of this size (0 = all)."),
    seed: int = SEED_OPTION,
    shard: str = _in_panel(SHARD_OPTION, TEXT_PANEL),
    query_budget: int = _in_panel(QUERY_BUDGET_OPTION, TEXT_PANEL),
    model_batch_size: int = _in_panel(BATCH_OPTION, TEXT_PANEL),
    max_length: int = _in_panel(MAX_LENGTH_OPTION, TEXT_PANEL),
    mlm: str = _in_panel(MLM_OPTION, TEXT_PANEL),
    perturber: str = typer.Option(None, "--perturber", help="A perturber with PGD's options [default: pgd].",
                                  autocompletion=robust_perturbers, rich_help_panel=EMBEDDING_PANEL),
    eps: float = typer.Option(None, "--eps", help="The radius ε of the ball [default: 0.075].",
                              rich_help_panel=EMBEDDING_PANEL),
    steps: int = typer.Option(None, "--steps", min=1, help="Attack steps [default: 10].",
                              rich_help_panel=EMBEDDING_PANEL),
    step_size: float = typer.Option(None, "--step-size", help="Step α [default: 2.5·ε/steps].",
                                    rich_help_panel=EMBEDDING_PANEL),
    norm: str = typer.Option(None, "--norm", help="l2 or linf [default: l2].", rich_help_panel=EMBEDDING_PANEL,
                             autocompletion=choices("l2", "linf")),
    overwrite: bool = OVERWRITE_OPTION,
    checkpoint: str = CHECKPOINT_OPTION,
    device: str = DEVICE_OPTION,
    runtime: str = _in_panel(RUNTIME_OPTION, TEXT_PANEL),
    as_json: bool = JSON_OPTION,
):
    """Build an adversarial dataset: attack each example and save clean and adversarial text side by side.

    Writes OUTPUT/SPLIT.jsonl (SPLIT from --data: train for sst2:train) with one row per attacked example:
    text (clean), adv_text, label, attack and status (successful, failed or skipped; for the last two adv_text
    is the attack's final text, the clean one when skipped), plus text_pair / adv_text_pair for pair tasks; and
    OUTPUT/meta.json with the label names, so that recipes can name it as a dataset folder (data
    OUTPUT:SPLIT, like runs/adv/sst2_pwws:train), as a catalogue entry (ADVCL_DATA_DIR set to OUTPUT's parent,
    data OUTPUT-NAME:SPLIT) or as a file. The attack's own results (resumable, shardable) are kept in
    OUTPUT/SPLIT.attack/; the dataset is written once every example of the sample is done.

    With --space embedding, PGD (as in `advcl eval --robust`, at one ε) perturbs the input embeddings instead, for
    analysis: OUTPUT/SPLIT.embedding.safetensors holds per example δ (zero at padding), its norm, and the clean
    and adversarial sentence representations and logits; OUTPUT/SPLIT.embedding.jsonl indexes its rows (text,
    label, both predictions, ‖δ‖, cosine and euclidean distance). δ takes examples x length x hidden size floats:
    sample big splits with --num-examples.
    """
    from advcl.errors import BadInput

    embedding_options = {"perturber": perturber, "eps": eps, "steps": steps, "step_size": step_size, "norm": norm}
    embedding_options = {k: v for k, v in embedding_options.items() if v is not None}
    if space == "embedding":
        text_only = {"--attack": attack, "--shard": shard, "--query-budget": query_budget, "--mlm": mlm,
                     "--runtime": runtime != "auto"}
        given = [option for option, value in text_only.items() if value]
        if given:
            raise BadInput(f"{', '.join(given)} set a text attack: drop them for --space embedding")
        from advcl.evaluation.embedding_space_attack import perturb_embeddings

        result = perturb_embeddings(model, data, output, split_of(data), num_examples, seed, model_batch_size,
                                    max_length, {**EMBEDDING_SPACE_DEFAULTS, **embedding_options}, overwrite,
                                    checkpoint, device)
        if as_json:
            print_json(result)
        else:
            print_table(f"{result['attack']} on the input embeddings — {data}", ["", "value"],
                        [[k, v] for k, v in result.items()])
        return
    if space != "text":
        raise BadInput(f"--space must be text or embedding, got {space!r}")
    if embedding_options:
        names = ", ".join("--" + k.replace("_", "-") for k in embedding_options)
        raise BadInput(f"{names} set an embedding-space attack: add --space embedding")
    if not attack:
        raise BadInput("give --attack NAME (a text attack), or --space embedding")
    from advcl.attacks.runner import Shard
    from advcl.attacks.session import AttackRequest, execute, prepare, sample_rows

    split = split_of(data)
    job = prepare(AttackRequest(attack, model, data, num_examples, seed, query_budget, model_batch_size, max_length,
                                mlm=mlm, output=output / f"{split}.attack", shard=Shard.parse(shard),
                                overwrite=overwrite, checkpoint=checkpoint, device=device, runtime=runtime))
    execute(job)
    rows = sample_rows(job)
    result = {"attack": job.description, "data": data, "output": str(output), "split": split,
              "examples": len(job.dataset), "finished": len(job.done)}
    if rows is not None:
        from advcl.attacks.adversarial_dataset import write_dataset

        counts = write_dataset(output, split, rows, job)
        result.update(file=str(output / f"{split}.jsonl"), **counts)
    if as_json:
        print_json(result)
        return
    print_table(f"{job.description} — adversarial {split} split", ["", "value"], [[k, v] for k, v in result.items()])
    if rows is None:
        from advcl.runtime.progress import stderr

        stderr.print(f"{len(job.done)} of {len(job.dataset)} examples attacked; {output / f'{split}.jsonl'} is "
                     "written when all are (finish the other shards, then run again without --shard)")


def split_of(data: str) -> str:
    """The split a --data names: train for sst2:train, the file's stem for a file."""
    from advcl.data.catalogue import is_file_spec, parse_spec

    return Path(data).stem if is_file_spec(data) else parse_spec(data)[1]
