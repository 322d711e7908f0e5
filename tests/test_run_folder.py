"""The run folder's shared pieces: report.json's one merge (``RunFolder.record``), the one atomic write, and the one
``--checkpoint`` option every command that loads a run uses."""

from __future__ import annotations

import json

import pytest

from advcl.runs import RunFolder
from advcl.runtime.atomic import atomic_path, write_text
from test_reliability_overwrite import advcl, one_line


def test_record_merges_into_the_top_level_or_one_section_and_keeps_the_rest(tmp_path):
    run = RunFolder(tmp_path)
    run.report.write_text(json.dumps({"status": "completed", "evaluations": {"a:test": {"accuracy": 0.5}},
                                      "sts": {"spearman": 0.7}}))
    run.record({"status": "interrupted", "step": 12})
    run.record({"b:test": {"accuracy": 0.25}}, "evaluations")
    run.record({"pgd:a": {"eps": [0.1]}}, "robustness")
    assert json.loads(run.report.read_text()) == {
        "status": "interrupted", "step": 12, "sts": {"spearman": 0.7},
        "evaluations": {"a:test": {"accuracy": 0.5}, "b:test": {"accuracy": 0.25}},
        "robustness": {"pgd:a": {"eps": [0.1]}},
    }


def test_record_on_a_folder_without_a_report_starts_one(tmp_path):
    RunFolder(tmp_path).record({"x:y": 1}, "attacks")
    assert json.loads((tmp_path / "report.json").read_text()) == {"attacks": {"x:y": 1}}


def test_an_atomic_write_that_fails_leaves_the_old_file_and_no_temporary_one(tmp_path):
    target = tmp_path / "summary.json"
    write_text(target, "old\n")
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_text("half")
        raise RuntimeError("killed mid-write")
    assert target.read_text() == "old\n" and sorted(p.name for p in tmp_path.iterdir()) == ["summary.json"]
    with atomic_path(target) as tmp:
        assert tmp.parent == tmp_path and tmp.suffix == ".json" and tmp.name.startswith(".")
        tmp.write_text("new\n")
    assert target.read_text() == "new\n" and sorted(p.name for p in tmp_path.iterdir()) == ["summary.json"]


@pytest.mark.parametrize("command", [
    ["eval", "--data", "sst2:validation"],
    ["attack", "--attack", "deepwordbug", "--data", "sst2:validation"],
    ["perturb", "--attack", "deepwordbug", "--data", "sst2:validation", "--output", "out"],
    ["export", "--output", "out"],
    ["embed", "--input", "sentences.txt", "--output", "out.npy"],
])
def test_every_command_refuses_a_checkpoint_other_than_best_or_last(capsys, tmp_path, command):
    code, err = advcl(capsys, *command, "--model", str(tmp_path / "no-such-run"), "--checkpoint", "lats")
    assert code == 2 and one_line(err) == "error: --checkpoint must be best or last, got 'lats'"
    assert list(tmp_path.iterdir()) == []
