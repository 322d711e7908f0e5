"""bench/gpu_throughput.py in its CPU smoke mode, and the engine's CUDA-only speed-ups (pinned copies, fused AdamW)."""

import importlib.util
import json
from pathlib import Path

import pytest
import torch

from advcl.runtime.devices import to_device
from advcl.engine.optim import build_optimizer

BENCH = Path(__file__).resolve().parents[1] / "bench" / "gpu_throughput.py"


def load_bench():
    spec = importlib.util.spec_from_file_location("gpu_throughput", BENCH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_throughput_bench_smoke_run_times_the_engines_own_step(monkeypatch, capsys):
    from advcl.engine.trainer import Trainer

    bench = load_bench()
    calls = []
    step = Trainer.train_step

    def counting(self):
        calls.append((self.recipe.objective.name, self.state.step))
        return step(self)

    monkeypatch.setattr(Trainer, "train_step", counting)
    bench.main(["--device", "cpu", "--tiny"])
    report = json.loads(capsys.readouterr().out)
    # 3 objectives x (1 warm-up + 2 timed) engine steps, each on the step after the last
    assert calls == [(name, s) for name in ("vanilla", "cat", "cat") for s in range(3)]
    assert report["engine_step"] == "advcl.engine.trainer.Trainer.train_step"
    assert report["precision"] == "fp32" and report["peak_flops"] is None
    rows = {r["objective"]: r for r in report["results"]}
    assert list(rows) == ["vanilla", "cat", "cat_detached"]
    n, a = report["encoder"]["matmul_weights_N"], 2 * 16 * 32  # layers x seq_len x hidden
    assert n == 2 * (4 * 32 * 32 + 2 * 32 * 64)
    for name, (n_coef, a_coef) in {"vanilla": (6, 12), "cat": (14, 32), "cat_detached": (12, 24)}.items():
        row = rows[name]
        assert (row["seq_len"], row["batch_size"], row["tokens_per_step"]) == (16, 4, 64)
        assert row["model_flops_per_token"] == n_coef * n + a_coef * a
        assert row["step_s"] > 0 and row["tokens_per_s"] == pytest.approx(64 / row["step_s"])
        assert row["mfu"] is None  # no peak for a CPU
    assert rows["cat"]["flops_ratio_to_vanilla"] == pytest.approx((14 * n + 32 * a) / (6 * n + 12 * a))
    assert rows["cat"]["step_ratio_to_vanilla"] == pytest.approx(rows["cat"]["step_s"] / rows["vanilla"]["step_s"])
    assert report["summary"]["vanilla_mfu_met"] is None and report["summary"]["cat_step_ratio_met"] is None


def test_mfu_uses_the_given_peak(capsys):
    load_bench().main(["--device", "cpu", "--tiny", "--objectives", "vanilla", "--peak-flops", "1e12"])
    (row,) = json.loads(capsys.readouterr().out)["results"]
    assert row["mfu"] == pytest.approx(row["model_flops_per_step"] / row["step_s"] / 1e12)


def test_peak_flops_table_by_gpu_name(monkeypatch):
    bench = load_bench()
    cuda = torch.device("cuda", 0)
    for name, peak in (("NVIDIA H100 80GB HBM3", 989e12), ("NVIDIA H100 PCIe", 756e12), ("NVIDIA H200", 989e12),
                       ("NVIDIA A100-SXM4-80GB", 312e12)):
        monkeypatch.setattr(torch.cuda, "get_device_name", lambda device=None, name=name: name)
        assert bench.peak_flops(cuda, None)[0] == peak
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda device=None: "Some Future GPU")
    assert bench.peak_flops(cuda, None)[0] is None and bench.peak_flops(cuda, 5e14)[0] == 5e14


def test_batches_go_to_the_cpu_unpinned_and_unchanged():
    batch = {"input_ids": torch.tensor([[2, 7, 3]]), "labels": torch.tensor([1])}
    moved = to_device(batch, torch.device("cpu"))
    assert moved.keys() == batch.keys()
    for key in batch:
        assert torch.equal(moved[key], batch[key]) and not moved[key].is_pinned()


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_batches_go_to_cuda_through_pinned_memory():
    moved = to_device({"input_ids": torch.tensor([[2, 7, 3]])}, torch.device("cuda"))
    assert moved["input_ids"].is_cuda and moved["input_ids"].tolist() == [[2, 7, 3]]


def test_fused_adamw_only_when_asked_and_the_same_update():
    torch.manual_seed(0)
    plain_model = torch.nn.Linear(4, 3)
    fused_model = torch.nn.Linear(4, 3)
    fused_model.load_state_dict(plain_model.state_dict())
    plain = build_optimizer([plain_model], 1e-2, 0.01)
    fused = build_optimizer([fused_model], 1e-2, 0.01, fused=True)
    assert not plain.defaults.get("fused") and fused.defaults["fused"] is True
    x = torch.randn(5, 4)
    for model, optimizer in ((plain_model, plain), (fused_model, fused)):
        for _ in range(3):
            model(x).square().sum().backward()
            optimizer.step()
            optimizer.zero_grad()
    for p, q in zip(plain_model.parameters(), fused_model.parameters()):
        assert torch.allclose(p, q, atol=1e-6)


def test_the_engine_fuses_adamw_on_cpu_too(tmp_path):
    bench = load_bench()
    cpu = torch.device("cpu")
    trainer = bench.build_trainer("vanilla", bench.encoder_config(True), 4, 16, 2, cpu, "fp32", tmp_path)
    assert trainer.optimizer.defaults.get("fused") is True  # PyTorch's fused kernel has a CPU version
