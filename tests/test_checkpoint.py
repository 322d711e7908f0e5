"""Checkpoints: exact round trip, atomic writes under failure, pruning that keeps the best."""

import errno

import pytest
import torch

from advcl.engine import checkpoint as ckpt
from advcl.runs import checkpoints as folders
from advcl.errors import RunFailed
from tiny_models import tiny_bert


def _trained_model_and_optimizer():
    model = tiny_bert()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    ids = torch.randint(0, 30522, (4, 7))
    for _ in range(2):
        model(input_ids=ids, labels=torch.tensor([0, 1, 0, 1])).loss.backward()
        opt.step()
        opt.zero_grad()
    return model, opt, ids


def _save(root, step, model, opt, **state):
    return ckpt.save_checkpoint(root, step, model.state_dict(), {}, opt.state_dict(), {"scheduler": {}, **state})


def test_round_trip_restores_identical_weights_optimizer_and_outputs(tmp_path):
    model, opt, ids = _trained_model_and_optimizer()
    folder = _save(tmp_path, 2, model, opt, best_step=2)
    saved = ckpt.load_checkpoint(folder)

    fresh = tiny_bert(seed=123)
    fresh.load_state_dict(saved["model"])
    fresh_opt = torch.optim.AdamW(fresh.parameters(), lr=1e-3)
    fresh_opt.load_state_dict(saved["optimizer"])
    model.eval(), fresh.eval()
    assert torch.equal(model(input_ids=ids).logits, fresh(input_ids=ids).logits)
    original, restored = opt.state_dict()["state"], fresh_opt.state_dict()["state"]
    assert original.keys() == restored.keys()
    for index, entries in original.items():
        for key in ("step", "exp_avg", "exp_avg_sq"):
            assert torch.equal(entries[key], restored[index][key])
    assert saved["state"]["step"] == 2 and saved["state"]["best_step"] == 2


def test_rng_state_round_trip_reproduces_random_draws(tmp_path):
    model, opt, _ = _trained_model_and_optimizer()
    folder = _save(tmp_path, 1, model, opt)
    expected = torch.rand(5)
    saved = ckpt.load_checkpoint(folder)
    torch.rand(100)  # move the generator on
    ckpt.restore_rng(saved["rng"], saved["state"]["rng"][0])
    assert torch.equal(torch.rand(5), expected)


def test_only_the_training_gpus_generator_is_saved_and_it_goes_to_the_gpu_trained_on_after_resume(monkeypatch):
    """gpu-notes item 4: every visible GPU's state, restored by a text sort of their names (cuda.10 before cuda.2),
    failed or misplaced states when a resume saw another number of GPUs. No GPU here: torch.cuda's generator
    functions are stand-ins that record what they are given."""
    states = {3: torch.tensor([3], dtype=torch.uint8)}
    restored = []
    monkeypatch.setattr(torch.cuda, "get_rng_state", lambda device: states[device.index])
    monkeypatch.setattr(torch.cuda, "set_rng_state", lambda state, device: restored.append((state, device)))
    tensors, meta = ckpt.rng_state(torch.device("cuda", 3))
    assert set(tensors) == {"torch", "cuda"} and torch.equal(tensors["cuda"], states[3])
    ckpt.restore_rng(tensors, meta, torch.device("cuda", 0))  # resumed where one GPU is visible
    assert restored == [(tensors["cuda"], torch.device("cuda", 0))]
    cpu_tensors, cpu_meta = ckpt.rng_state(torch.device("cpu"))
    assert set(cpu_tensors) == {"torch"}
    ckpt.restore_rng(tensors, meta, torch.device("cpu"))  # a GPU checkpoint resumed on the CPU: its CPU state only
    assert len(restored) == 1


def test_a_failing_write_keeps_the_last_good_checkpoint(tmp_path, monkeypatch):
    model, opt, _ = _trained_model_and_optimizer()
    good = _save(tmp_path, 1, model, opt)
    before = {p.name: p.read_bytes() for p in good.iterdir()}
    real_save = ckpt.save_file

    def disk_full(tensors, path):
        if path.name == "optimizer.safetensors":
            raise OSError(errno.ENOSPC, "No space left on device")
        real_save(tensors, path)

    monkeypatch.setattr(ckpt, "save_file", disk_full)
    with pytest.raises(RunFailed) as info:
        _save(tmp_path, 2, model, opt)
    assert str(info.value) == f"could not write checkpoint for step 2 (disk full); the last good checkpoint is {good}"
    assert [p.name for p in tmp_path.iterdir()] == [good.name]  # no half-written folder left
    assert folders.latest_checkpoint(tmp_path) == good
    assert {p.name: p.read_bytes() for p in good.iterdir()} == before


def test_prune_keeps_newest_and_best(tmp_path):
    model, opt, _ = _trained_model_and_optimizer()
    for step in (1, 2, 3, 4, 5):
        _save(tmp_path, step, model, opt)
    folders.prune_checkpoints(tmp_path, keep=2, protect={folders.checkpoint_name(2)})
    assert [p.name for p in folders.list_checkpoints(tmp_path)] == ["step-0000002", "step-0000004", "step-0000005"]


def test_incomplete_folders_are_not_checkpoints(tmp_path):
    (tmp_path / ".tmp-step-0000009-1").mkdir()
    (tmp_path / "step-0000010").mkdir()  # no state.json: never renamed into place by us
    assert folders.latest_checkpoint(tmp_path) is None
