"""Data-parallel training with torchrun on CPU (gloo, 2 processes) against one process with the doubled batch."""

import json
import os
import subprocess
import sys

import pytest
import torch
import torch.multiprocessing as mp
from safetensors.torch import load_file

from conftest import run_cli, write_tiny_recipe


@pytest.fixture(scope="module")
def no_dropout_model_dir(tmp_path_factory):
    """Dropout off, so that one process and two processes see the same function."""
    from tiny_models import tiny_bert, tiny_tokenizer

    folder = tmp_path_factory.mktemp("tiny-nodrop")
    model = tiny_bert()
    model.config.hidden_dropout_prob = model.config.attention_probs_dropout_prob = 0.0
    model.save_pretrained(folder)
    tiny_tokenizer().save_pretrained(folder)
    return folder


def torchrun(nproc: int, *args: str):
    return subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}",
         "-m", "advcl", *args],
        capture_output=True, text=True, timeout=900, env={**os.environ, "OMP_NUM_THREADS": "1"},
    )


def final_weights(run_dir):
    last = sorted((run_dir / "checkpoints").glob("step-*"))[-1]
    return last.name, load_file(last / "model.safetensors")


@pytest.mark.parametrize("objective", ["vanilla", "fgm_at"])
def test_two_processes_match_one_process_with_the_doubled_batch(tmp_path, no_dropout_model_dir, objective):
    common = {"data": {"max_train_examples": 64, "max_eval_examples": 30},
              "train": {"epochs": 1, "eval_every": 2, "log_every": 1}, "objective": {"name": objective}}
    (tmp_path / "one").mkdir(), (tmp_path / "two").mkdir()
    one = write_tiny_recipe(tmp_path / "one", no_dropout_model_dir, **common)
    two = write_tiny_recipe(tmp_path / "two", no_dropout_model_dir, **common)
    done = run_cli("train", "--recipe", str(one), "--set", "train.batch_size=16")
    assert done.returncode == 0, done.stderr
    done = torchrun(2, "train", "--recipe", str(two), "--set", "train.batch_size=8")
    assert done.returncode == 0, done.stderr
    name_one, single = final_weights(tmp_path / "one" / "runs" / "tiny")
    name_two, double = final_weights(tmp_path / "two" / "runs" / "tiny")
    assert name_one == name_two == "step-0000004"
    for key in single:
        assert torch.allclose(single[key], double[key], atol=2e-5), key
    report = json.loads((tmp_path / "two" / "runs" / "tiny" / "report.json").read_text())
    assert report["processes"] == 2 and report["examples_seen"] == 64
    rows = (tmp_path / "two" / "runs" / "tiny" / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(r)["step"] for r in rows if '"train"' in r] == [1, 2, 3, 4]  # rank 0 logs, once
    one_val = [json.loads(r) for r in (tmp_path / "one" / "runs" / "tiny" / "metrics.jsonl").read_text().splitlines() if "validation" in r]
    two_val = [json.loads(r) for r in rows if "validation" in r]
    assert [r["accuracy"] for r in one_val] == [r["accuracy"] for r in two_val]  # evaluation gathered over ranks


def test_resume_under_torchrun_continues_the_run(tmp_path, no_dropout_model_dir):
    recipe = write_tiny_recipe(tmp_path, no_dropout_model_dir, data={"max_train_examples": 64},
                               train={"epochs": 1, "batch_size": 8, "max_steps": 2, "save_every": 1})
    assert torchrun(2, "train", "--recipe", str(recipe)).returncode == 0
    run_dir = tmp_path / "runs" / "tiny"
    report = json.loads((run_dir / "report.json").read_text())
    report["status"] = "interrupted"  # pretend it stopped after step 2 of a longer run
    (run_dir / "report.json").write_text(json.dumps(report))
    config = (run_dir / "config.toml").read_text().replace("max_steps = 2", "max_steps = 4")
    (run_dir / "config.toml").write_text(config)
    done = torchrun(2, "train", "--resume", str(run_dir))
    assert done.returncode == 0, done.stderr
    assert "resuming" in done.stderr and final_weights(run_dir)[0] == "step-0000004"
    for folder in (run_dir / "checkpoints").glob("step-*"):
        assert sorted(p.name for p in folder.glob("rng-*")) == ["rng-0.safetensors", "rng-1.safetensors"]


def test_more_processes_than_examples_is_one_error_from_rank_0(tmp_path, no_dropout_model_dir):
    recipe = write_tiny_recipe(tmp_path, no_dropout_model_dir, data={"max_train_examples": 1})
    done = torchrun(2, "train", "--recipe", str(recipe))
    assert done.returncode != 0
    errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert errors == ["error: 2 processes but only 1 training examples"]


def test_global_batch_size_must_divide(tmp_path, no_dropout_model_dir):
    recipe = write_tiny_recipe(tmp_path, no_dropout_model_dir, train={"batch_size": 8, "global_batch_size": 20})
    done = run_cli("train", "--recipe", str(recipe))
    assert done.returncode == 2
    assert "'train.global_batch_size' = 20 does not divide into 1 process(es) x train.batch_size 8" in done.stderr


def _gathered_losses(rank, world, port, z1, z2, out):
    import torch.distributed as dist

    from advcl.losses.infonce import InfoNCE
    from advcl.losses.nt_xent import NTXent

    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=world)
    half = slice(rank * len(z1) // world, (rank + 1) * len(z1) // world)
    results = {}
    for loss in (InfoNCE(), NTXent()):
        a, b = z1[half].clone().requires_grad_(), z2[half].clone().requires_grad_()
        value = loss(a, b)
        value.backward()
        results[loss.name] = (value.item(), a.grad.tolist(), b.grad.tolist())
    out.put((rank, results))
    dist.destroy_process_group()


def test_gathered_negatives_equal_the_single_process_loss_on_the_concatenated_batch():
    import socket

    from advcl.losses.infonce import InfoNCE
    from advcl.losses.nt_xent import NTXent

    g = torch.Generator().manual_seed(0)
    z1, z2 = torch.randn(6, 5, generator=g), torch.randn(6, 5, generator=g)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    ctx = mp.get_context("spawn")
    out = ctx.Queue()
    procs = [ctx.Process(target=_gathered_losses, args=(r, 2, port, z1, z2, out)) for r in range(2)]
    for p in procs:
        p.start()
    results = dict(out.get(timeout=120) for _ in procs)
    for p in procs:
        p.join(timeout=60)
    for loss in (InfoNCE(), NTXent()):
        a, b = z1.clone().requires_grad_(), z2.clone().requires_grad_()
        full = loss(a, b)
        full.backward()
        per_rank = [results[r][loss.name] for r in range(2)]
        # DDP averages over ranks: the mean of the ranks' losses is the big batch's loss ...
        assert sum(v for v, _, _ in per_rank) / 2 == pytest.approx(full.item(), abs=1e-6)
        # ... and each rank's input gradient (after averaging) is the big batch's gradient for its rows
        grad_a = torch.tensor([row for _, g_a, _ in per_rank for row in g_a]) / 2
        grad_b = torch.tensor([row for _, _, g_b in per_rank for row in g_b]) / 2
        assert torch.allclose(grad_a, a.grad, atol=1e-6) and torch.allclose(grad_b, b.grad, atol=1e-6)
