"""Data-parallel training with torchrun on CPU (gloo, 2 processes) against one process with the doubled batch."""

import json
import os
import subprocess
import sys

import pytest
import torch
import torch.multiprocessing as mp
from safetensors.torch import load_file

from conftest import SHARED_DATA, run_cli, write_tiny_recipe


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


def torchrun(nproc: int, *args: str, env: dict | None = None):
    return subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}",
         "-m", "advcl", *args],
        capture_output=True, text=True, timeout=900, env={**os.environ, "OMP_NUM_THREADS": "1", **(env or {})},
    )


def results_of(out, procs, timeout=600) -> dict:
    """Each spawned process's result from ``out`` (rank first), once every process has exited with 0.

    Fails at once when a process ends without a result, and kills any process still running at the end, so that
    a crash or a hang in a process's teardown fails this test instead of stalling it or pytest's exit.
    """
    import queue
    import time

    results, deadline = {}, time.monotonic() + timeout
    try:
        while len(results) < len(procs):
            try:
                rank, *rest = out.get(timeout=1)
                results[rank] = rest[0] if len(rest) == 1 else tuple(rest)
            except queue.Empty:
                dead = [p.exitcode for p in procs if p.exitcode not in (None, 0)]
                assert not dead, f"a process ended with {dead[0]} before giving its result"
                assert time.monotonic() < deadline, f"{len(procs) - len(results)} process(es) gave no result"
        for p in procs:
            p.join(timeout=max(deadline - time.monotonic(), 1))
        assert [p.exitcode for p in procs] == [0] * len(procs), "a process did not exit cleanly after its result"
    finally:
        for p in procs:
            if p.is_alive():
                p.kill()
                p.join()
    return results


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


def gathering_losses():
    """(loss, the number of (rows, dim) inputs it takes) for each loss that gathers other processes' rows."""
    from advcl.losses.infonce import InfoNCE
    from advcl.losses.multi_positive_infonce import MultiPositiveInfoNCE
    from advcl.losses.nt_xent import NTXent

    return [(InfoNCE(), 2), (NTXent(), 2), (MultiPositiveInfoNCE(), 3)]  # the last: an anchor and two views


def _gathered_losses(rank, world, port, views, out):
    import torch.distributed as dist

    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=world)
    half = slice(rank * len(views[0]) // world, (rank + 1) * len(views[0]) // world)
    results = {}
    for loss, inputs in gathering_losses():
        mine = [v[half].clone().requires_grad_() for v in views[:inputs]]
        value = loss(*mine)
        value.backward()
        results[loss.name] = (value.item(), [m.grad.tolist() for m in mine])
    out.put((rank, results))
    dist.destroy_process_group()


def test_gathered_negatives_equal_the_single_process_loss_on_the_concatenated_batch():
    g = torch.Generator().manual_seed(0)
    views = [torch.randn(6, 5, generator=g) for _ in range(3)]
    ctx = mp.get_context("spawn")
    out, port = ctx.Queue(), free_port()
    procs = [ctx.Process(target=_gathered_losses, args=(r, 2, port, views, out)) for r in range(2)]
    for p in procs:
        p.start()
    results = results_of(out, procs)
    for loss, inputs in gathering_losses():
        whole = [v.clone().requires_grad_() for v in views[:inputs]]
        full = loss(*whole)
        full.backward()
        per_rank = [results[r][loss.name] for r in range(2)]
        # DDP averages over ranks: the mean of the ranks' losses is the big batch's loss ...
        assert sum(v for v, _ in per_rank) / 2 == pytest.approx(full.item(), abs=1e-6), loss.name
        # ... and each rank's input gradient (after averaging) is the big batch's gradient for its rows
        for i, w in enumerate(whole):
            grad = torch.tensor([row for _, grads in per_rank for row in grads[i]]) / 2
            assert torch.allclose(grad, w.grad, atol=1e-6), (loss.name, i)


# -- CARL's memory banks ------------------------------------------------------------------------------------


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _train_and_dump(rank, world, port, recipe_path, out_dir):
    """One process of a run launched as torchrun would (RANK, WORLD_SIZE... in the environment), through the
    engine's own session functions; writes this process's final model and objective state."""
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE=str(world),
                      LOCAL_RANK=str(rank), LOCAL_WORLD_SIZE=str(world))
    from safetensors.torch import save_file

    from advcl.config.recipe import load_recipe
    from advcl.engine import session
    from advcl.runtime.distributed import shutdown

    recipe = load_recipe(recipe_path)
    device, topology = session._device_and_processes(recipe)
    trainer = session._build(recipe, session.run_folder_for(recipe), True, device, topology)
    trainer.fit()
    state = {f"objective.{k}": v for k, v in trainer.objective.state_dict().items()}
    state |= {f"model.{k}": v for k, v in trainer.model.hf.state_dict().items()}
    save_file({k: v.detach().contiguous() for k, v in state.items()}, str(out_dir / f"rank{rank}.safetensors"))
    # the DDP wrapper goes before the process group: freed after it, it would be the last holder of the gloo group and
    # destroy it holding the GIL while a gloo thread may still need the GIL to drop its last work (a deadlock
    # under load; as the CLI's success path does, the trainer is gone when the group is destroyed)
    del trainer
    shutdown()


def run_processes(world, target, *args, timeout=600):
    port = free_port()
    ctx = mp.get_context("spawn")
    procs = [ctx.Process(target=target, args=(rank, world, port, *args)) for rank in range(world)]
    for p in procs:
        p.start()
    try:
        for p in procs:
            p.join(timeout=timeout)
        assert [p.exitcode for p in procs] == [0] * world
    finally:
        for p in procs:
            if p.is_alive():
                p.kill()
                p.join()


def balanced_sst2(path, per_label: int):
    """``per_label`` short SST-2 training sentences of each label, alternating, as a user jsonl file."""
    rows = [json.loads(line) for line in (SHARED_DATA / "sst2" / "train.jsonl").read_text().splitlines()[:400]]
    rows = [r for r in rows if len(r["text"].split()) <= 12]
    by_label = [[r for r in rows if r["label"] == label][:per_label] for label in (0, 1)]
    path.write_text("".join(json.dumps(r) + "\n" for pair in zip(*by_label) for r in pair))
    return path


def _collectives(rank, world, port, out):
    import torch.distributed as dist

    from advcl.runtime.distributed import any_rank, gather_rows

    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=world)
    rows = torch.arange(3 * (rank + 1), dtype=torch.float).view(-1, 3) + 10 * rank  # rank 0: 1 row, rank 1: 2
    labels = torch.full((rank + 1,), rank)
    gathered, gathered_labels = gather_rows(rows, labels)
    out.put((rank, gathered.tolist(), gathered_labels.tolist(), any_rank(rank == 1, False, True)))
    dist.destroy_process_group()


def test_gather_rows_and_any_rank_agree_on_every_process():
    ctx = mp.get_context("spawn")
    out, port = ctx.Queue(), free_port()
    procs = [ctx.Process(target=_collectives, args=(r, 2, port, out)) for r in range(2)]
    for p in procs:
        p.start()
    results = results_of(out, procs)
    expected = ([[0.0, 1.0, 2.0], [10.0, 11.0, 12.0], [13.0, 14.0, 15.0]], [0, 1, 1], (True, False, True))
    assert results == {0: expected, 1: expected}


def test_lost_peer_tells_another_process_stopping_from_an_own_error():
    import torch.distributed as dist

    from advcl.runtime.distributed import lost_peer

    closed = RuntimeError("[/pytorch/third_party/gloo/gloo/transport/tcp/pair.cc:553] Connection closed by peer "
                          "[127.0.0.1]:60621. This is typically caused by a remote worker crashing.")
    assert lost_peer(closed) and lost_peer(dist.DistNetworkError("store gone"))
    assert not lost_peer(RuntimeError("mat1 and mat2 shapes cannot be multiplied")) and not lost_peer(ValueError("x"))


def test_a_bank_update_writes_a_repeated_index_once_from_its_first_row():
    from advcl.losses.memory_bank_contrast import MemoryBankContrast, first_occurrences

    assert first_occurrences(torch.tensor([3, 1, 3, 2, 1])).tolist() == [0, 1, 3]
    bank = MemoryBankContrast(MemoryBankContrast.Config(momentum=0.5), num_examples=4, dim=2)
    reps = torch.tensor([[3.0, 4.0], [1.0, 0.0], [0.0, 2.0]])
    bank.update(torch.tensor([1, 1, 2]), reps, -reps, torch.tensor([0, 1, 1]))
    assert torch.allclose(bank.bank_orig[1], torch.tensor([0.6, 0.8])) and bank.bank_labels.tolist() == [-1, 0, 1, -1]
    assert torch.allclose(bank.bank_adv[2], torch.tensor([0.0, -1.0]))


def test_ddp_leaves_carls_banks_out_of_its_buffer_broadcast():
    from advcl.config.validate import build
    from advcl.engine.trainer import TrainStep, rank_consistent_buffers
    from advcl.modeling.encoder import EncoderClassifier
    from advcl.objectives.carl import CARL
    from tiny_models import tiny_bert

    model = EncoderClassifier(tiny_bert())
    carl = CARL(build(CARL.Config, {"contrast": {"num_negatives": 4}}, "objective"), model=model, num_labels=2,
                num_train_examples=8)
    assert rank_consistent_buffers(TrainStep(model, carl)) == [
        "objective.contrast.bank_orig", "objective.contrast.bank_adv", "objective.contrast.bank_labels"
    ]


def test_carl_memory_banks_are_the_same_on_every_process_and_as_one_process_with_the_doubled_batch(
    tmp_path, no_dropout_model_dir
):
    """2 processes x 8 rows against 1 x 16 over two epochs of 64 balanced examples: the banks fill in the first
    epoch (L_D on from step 5) only if every process writes every process's rows. With m = 32 every anchor
    contrasts against all 32 rows of the other label, so the random draw of negatives changes no loss."""
    data = balanced_sst2(tmp_path / "balanced.jsonl", 32)
    common = {"data": {"train": str(data), "validation": "", "max_train_examples": 0},
              "train": {"epochs": 2, "save_every": 100, "log_every": 1},
              "objective": {"name": "carl", "freelb": {"init_mag": 0.0}, "contrast": {"num_negatives": 32}}}
    results = {}
    for world, batch_size in ((1, 16), (2, 8)):
        folder = tmp_path / f"world{world}"
        folder.mkdir()
        recipe = write_tiny_recipe(folder, no_dropout_model_dir, **common)
        recipe.write_text(recipe.read_text().replace("batch_size = 8", f"batch_size = {batch_size}"))
        run_processes(world, _train_and_dump, str(recipe), folder)
        results[world] = [load_file(folder / f"rank{rank}.safetensors") for rank in range(world)]
        rows = [json.loads(r) for r in (folder / "runs" / "tiny" / "metrics.jsonl").read_text().splitlines()]
        assert [r["contrast_on"] for r in rows if r["split"] == "train"] == [0.0] * 4 + [1.0] * 4
    (single,), (rank0, rank1) = results[1], results[2]
    banks = ("objective.contrast.bank_orig", "objective.contrast.bank_adv", "objective.contrast.bank_labels")
    for key in banks:
        assert torch.equal(rank0[key], rank1[key]), key  # every process holds the same banks ...
        assert torch.allclose(rank0[key].float(), single[key].float(), atol=1e-5), key  # ... one process's
    assert (single["objective.contrast.bank_labels"] >= 0).all()
    for key in single:
        assert torch.allclose(single[key].float(), rank0[key].float(), atol=2e-5), key


def test_robustsentembeds_token_memory_is_the_same_on_every_process_and_as_one_process_with_the_doubled_batch(
    tmp_path, no_dropout_model_dir
):
    """2 processes x 8 sentences against 1 x 16 for two steps: 𝒱 holds the η of every process's tokens only if each
    process writes every process's rows, and the contrast matches only if its negatives are gathered. With σ = 0, δ
    and 𝒱 start at zero, so that no process's random draw matters (each seeds its own generator); with σ > 0, the
    processes start from rank 0's random 𝒱 and the rows no batch wrote stay alike too."""
    results = {}
    for world, batch_size, sigma in ((1, 16, 0.0), (2, 8, 0.0), (2, 8, 0.05)):
        folder = tmp_path / f"world{world}-sigma{sigma}"
        folder.mkdir()
        recipe = write_tiny_recipe(folder, no_dropout_model_dir, data={"max_train_examples": 32, "validation": ""},
                                   train={"epochs": 1, "save_every": 100, "batch_size": batch_size},
                                   objective={"name": "robustsentembed", "rtd": False, "generator": "",
                                              "perturbation": {"init_mag": sigma}})
        run_processes(world, _train_and_dump, str(recipe), folder)
        results[world, sigma] = [load_file(folder / f"rank{rank}.safetensors")["objective.token_memory"]
                                 for rank in range(world)]
    (single,), (rank0, rank1) = results[1, 0.0], results[2, 0.0]
    assert torch.equal(rank0, rank1)  # every process holds the same 𝒱 ...
    written = single.abs().sum(1) > 0
    assert written.sum() > 20 and torch.equal(rank0.abs().sum(1) > 0, written)  # ... with every token's row
    # ... one process's, up to rounding: η's steps are normalised gradients, which amplify the different summation
    # order of a batch of 8 and of 16 (seen: 3e-6); a lost process's rows would be off by the size of η, ~ε = 5e-3
    assert torch.allclose(rank0, single, atol=5e-3 / 100)
    rank0, rank1 = results[2, 0.05]
    assert torch.equal(rank0, rank1) and (rank0[~written] != 0).all(1).sum() > 100  # a random start, shared


# -- evaluation ---------------------------------------------------------------------------------------------


class CountingEncoder(torch.nn.Module):
    """An encoder that counts the sentences it encodes."""

    def __init__(self, model):
        super().__init__()
        self.model, self.encoded = model, 0

    def forward(self, **inputs):
        self.encoded += len(inputs["input_ids"])
        return self.model(**inputs)


def _sts_validation(rank, world, port, out):
    from advcl.config.recipe import load_recipe
    from advcl.data.catalogue import load_data
    from advcl.engine.validation import make_validator
    from advcl.modeling.encoder import EncoderClassifier
    from tiny_models import tiny_bert, tiny_tokenizer

    if world > 1:
        import torch.distributed as dist

        os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
        dist.init_process_group("gloo", rank=rank, world_size=world)
    recipe = load_recipe(None, data={"data": {"train": "stsb:train", "validation": "stsb:validation"},
                                     "model": {"max_length": 32},
                                     "train": {"select_metric": "spearman", "eval_batch_size": 8}})
    dataset = load_data("stsb:validation").sample(41, 0)
    validate = make_validator(recipe, dataset, tiny_tokenizer(), 0, torch.device("cpu"))
    model = CountingEncoder(EncoderClassifier(tiny_bert(seed=3)).eval())
    torch.manual_seed(rank)  # nothing random may matter
    metrics = validate(model)
    out.put((rank, metrics, model.encoded))
    if world > 1:
        dist.destroy_process_group()


def test_sts_spearman_validation_is_sharded_over_processes_and_equals_one_process():
    ctx = mp.get_context("spawn")
    results = {}
    for world in (1, 2):
        out = ctx.Queue()
        port = free_port()
        procs = [ctx.Process(target=_sts_validation, args=(r, world, port, out)) for r in range(world)]
        for p in procs:
            p.start()
        results[world] = results_of(out, procs)
    (single, encoded), = results[1].values()
    assert encoded == 82 and single["examples"] == 41  # 41 pairs: 82 sentences
    for rank in (0, 1):
        metrics, encoded = results[2][rank]
        assert encoded == 41  # each process encodes half the sentences ...
        assert metrics["examples"] == 41  # ... and every process scores all the pairs,
        assert metrics["spearman"] == pytest.approx(single["spearman"], abs=1e-6)  # as one process does
    assert results[2][0][0]["spearman"] == results[2][1][0]["spearman"]


# -- failures -----------------------------------------------------------------------------------------------


def error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("error:")]


def rank_tracebacks(stderr: str) -> list[str]:
    """Python tracebacks printed by the training processes (torchrun prefixes their lines with [rankN]:)."""
    return [line for line in stderr.splitlines() if line.startswith("[rank") and "Traceback" in line]


def test_a_rank_that_fails_brings_the_others_down_within_seconds_with_one_error(tmp_path, no_dropout_model_dir):
    """Rank 0 alone writes checkpoints: when it cannot (here its checkpoints folder is a file) it stops with the
    reason while rank 1 waits for it in the checkpoint barrier; rank 1 must stop at once, without a traceback."""
    import shutil
    import time

    recipe = write_tiny_recipe(tmp_path, no_dropout_model_dir, data={"max_train_examples": 64, "validation": ""},
                               train={"epochs": 1, "batch_size": 8, "max_steps": 1, "save_every": 1})
    assert run_cli("train", "--recipe", str(recipe)).returncode == 0
    run_dir = tmp_path / "runs" / "tiny"
    report = json.loads((run_dir / "report.json").read_text())
    (run_dir / "report.json").write_text(json.dumps(report | {"status": "interrupted"}))
    config = (run_dir / "config.toml").read_text()
    (run_dir / "config.toml").write_text(config.replace("max_steps = 1", "max_steps = 3"))
    shutil.rmtree(run_dir / "checkpoints")
    (run_dir / "checkpoints").write_text("not a folder")
    # a collective timeout far beyond the start-up time of a loaded machine: a rank 1 left waiting for it in the
    # barrier would take 300 s more, while one that stops at once ends the job in the start-up time
    started = time.monotonic()
    done = torchrun(2, "train", "--resume", str(run_dir), env={"ADVCL_DIST_TIMEOUT": "300"})
    assert done.returncode != 0 and time.monotonic() - started < 240
    assert error_lines(done.stderr) == [
        "error: could not write checkpoint for step 1 (File exists); no earlier checkpoint exists"
    ], done.stderr
    assert rank_tracebacks(done.stderr) == [], done.stderr


def _children(pid: int) -> list[int]:
    from pathlib import Path

    found = []
    for status in Path("/proc").glob("[0-9]*/status"):
        try:
            fields = dict(line.split(":\t", 1) for line in status.read_text().splitlines() if ":\t" in line)
        except OSError:
            continue
        if int(fields.get("PPid", "0").strip()) == pid:
            found.append(int(status.parent.name))
    return found


def _environment(pid: int) -> dict:
    from pathlib import Path

    raw = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    return dict(entry.decode(errors="replace").split("=", 1) for entry in raw if b"=" in entry)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="finds the worker processes in /proc")
def test_a_killed_rank_brings_the_others_down_within_seconds(tmp_path, no_dropout_model_dir):
    """Rank 1 killed mid-run (as the kernel's OOM killer would): the job ends within seconds, non-zero, and no
    process hangs in a collective or prints a traceback."""
    import signal
    import time

    recipe = write_tiny_recipe(tmp_path, no_dropout_model_dir, data={"max_train_examples": 64, "validation": ""},
                               train={"epochs": 0, "max_steps": 100_000, "batch_size": 8, "save_every": 100_000,
                                      "log_every": 1})
    metrics = tmp_path / "runs" / "tiny" / "metrics.jsonl"
    with (tmp_path / "stderr.txt").open("w") as stderr:
        job = subprocess.Popen(
            [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
             "-m", "advcl", "train", "--recipe", str(recipe)],
            stdout=subprocess.DEVNULL, stderr=stderr, env={**os.environ, "OMP_NUM_THREADS": "1"},
        )
        try:
            deadline = time.monotonic() + 300
            while not (metrics.is_file() and metrics.read_text().count("\n") >= 2):
                assert job.poll() is None and time.monotonic() < deadline, "training did not start"
                time.sleep(0.2)
            (rank1,) = [pid for pid in _children(job.pid) if _environment(pid).get("RANK") == "1"]
            os.kill(rank1, signal.SIGKILL)
            killed = time.monotonic()
            job.wait(timeout=60)
            elapsed = time.monotonic() - killed
        finally:
            if job.poll() is None:
                job.kill()
                job.wait()
    text = (tmp_path / "stderr.txt").read_text()
    assert job.returncode != 0 and elapsed < 30, text
    assert rank_tracebacks(text) == [], text
    # rank 0 says so in one line when it meets the loss in a collective before torchrun's SIGTERM reaches it
    errors = error_lines(text)
    assert errors == [] or (len(errors) == 1 and errors[0].startswith(
        "error: another process stopped, so all 2 stopped (")), text
    assert "Signal 9 (SIGKILL)" in text  # torchrun names the process that died first


def _train_with_nan_on_rank_1(rank, world, port, recipe_path, out):
    """A run whose rank 1 alone sees a non-finite loss at step 3 (as a bad example or an fp16 overflow would)."""
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE=str(world),
                      LOCAL_RANK=str(rank), LOCAL_WORLD_SIZE=str(world))
    from advcl.config.recipe import load_recipe
    from advcl.engine import session
    from advcl.runtime.distributed import shutdown
    from advcl.errors import RunFailed

    recipe = load_recipe(recipe_path)
    device, topology = session._device_and_processes(recipe)
    trainer = session._build(recipe, session.run_folder_for(recipe), True, device, topology)
    step = trainer.objective.step

    def poisoned(batch, model, ctx):
        out = step(batch, model, ctx)
        if rank == 1 and ctx.step == 2:
            out.loss = out.loss * float("nan")
        return out

    trainer.objective.step = poisoned
    try:
        trainer.fit()
        out.put((rank, "finished", trainer.state.step))
    except RunFailed as exc:
        out.put((rank, str(exc), trainer.state.step))
    del trainer  # before the group: see _train_and_dump
    shutdown()


def test_a_non_finite_loss_on_one_rank_stops_every_rank_after_the_same_step(tmp_path, no_dropout_model_dir):
    recipe = write_tiny_recipe(tmp_path, no_dropout_model_dir, data={"max_train_examples": 64, "validation": ""},
                               train={"epochs": 1, "batch_size": 8, "save_every": 1})
    ctx = mp.get_context("spawn")
    out = ctx.Queue()
    port = free_port()
    procs = [ctx.Process(target=_train_with_nan_on_rank_1, args=(r, 2, port, str(recipe), out)) for r in range(2)]
    for p in procs:
        p.start()
    results = results_of(out, procs)
    expected = ("loss became nan at step 3 (process 1): run stopped; the last good checkpoint step-0000002 is "
                "kept (try a lower train.lr)")
    assert results == {0: (expected, 2), 1: (expected, 2)}
    report = json.loads((tmp_path / "runs" / "tiny" / "report.json").read_text())
    assert report["status"] == "failed" and report["message"].startswith("loss became nan at step 3 (process 1)")


@pytest.mark.parametrize("override, message", [
    ("train.global_batch_size=24",
     "error: 'train.global_batch_size' = 24 does not divide into 2 process(es) x train.batch_size 8"),
    ("run.device=cuda", "error: run.device = 'cuda' but no CUDA device is available (use 'auto' or 'cpu')"),
])
def test_bad_distributed_setup_is_one_error_from_rank_0(tmp_path, no_dropout_model_dir, override, message):
    if override == "run.device=cuda" and torch.cuda.is_available():
        pytest.skip("this machine has a CUDA device")
    recipe = write_tiny_recipe(tmp_path, no_dropout_model_dir, data={"max_train_examples": 64})
    done = torchrun(2, "train", "--recipe", str(recipe), "--set", override)
    assert done.returncode != 0
    assert error_lines(done.stderr) == [message], done.stderr
    assert rank_tracebacks(done.stderr) == [], done.stderr


def test_a_missing_backend_or_too_few_devices_is_a_clear_error(monkeypatch):
    import torch.distributed as dist

    from advcl.runtime.distributed import Topology, init_process_group
    from advcl.errors import BadInput

    monkeypatch.setattr(dist, "is_backend_available", lambda backend: False)
    with pytest.raises(BadInput, match="distributed backend 'gloo' is not available in this torch build"):
        init_process_group(Topology(0, 2, 0), torch.device("cpu"))
    with pytest.raises(BadInput, match="distributed backend 'nccl' is not available"):
        init_process_group(Topology(0, 2, 0), torch.device("cuda", 0))
    monkeypatch.setattr(dist, "is_backend_available", lambda backend: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "2")
    with pytest.raises(BadInput, match=r"2 processes per node but 1 CUDA device\(s\): use --nproc_per_node=1"):
        init_process_group(Topology(1, 2, 1), torch.device("cuda", 1))
