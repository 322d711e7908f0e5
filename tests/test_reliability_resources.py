"""Issue 16, attack resources: the pickles TextAttack unpickles are refused (exit 2, one line naming the file)
unless they match the SHA-256 manifest advcl wrote when it built them, before TextAttack can touch them."""

from __future__ import annotations

import json
import os
import pickle
from collections import defaultdict

import pytest

from advcl.attacks import resources
from advcl.errors import BadInput


class _Touch:
    """Unpickling this runs code: it creates the file it names (what a planted pickle would do)."""

    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return (os.mknod, (self.path,))


@pytest.fixture
def built(tmp_path):
    """A resources folder whose counter-fitted-vector pickles advcl 'built' (with their manifest)."""
    folder = tmp_path / resources.PARAGRAMCF
    folder.mkdir(parents=True)
    (folder / "wordlist.pickle").write_bytes(pickle.dumps({"good": 0, "bad": 1}))
    for name in ("mse_dist.p", "cos_sim.p"):
        (folder / name).write_bytes(pickle.dumps(defaultdict(dict)))
    resources.write_manifest(folder)
    return tmp_path


def test_the_manifest_records_each_pickle(built):
    manifest = json.loads((built / resources.PARAGRAMCF / resources.MANIFEST).read_text())
    assert sorted(manifest["sha256"]) == sorted(resources.PICKLES)
    assert all(len(h) == 64 for h in manifest["sha256"].values())
    resources.check_manifest(built / resources.PARAGRAMCF)  # untouched: accepted


@pytest.mark.parametrize("name", resources.PICKLES)
def test_a_replaced_pickle_is_refused_before_textattack_loads_it(built, tmp_path, name):
    marker = tmp_path / "pwned"
    (built / resources.PARAGRAMCF / name).write_bytes(pickle.dumps(_Touch(str(marker))))
    with pytest.raises(BadInput) as refused:
        resources.activate(built)
    message = str(refused.value)
    assert name in message and "does not match" in message and "\n" not in message
    assert not marker.exists()


def test_pickles_without_a_manifest_are_refused(built):
    (built / resources.PARAGRAMCF / resources.MANIFEST).unlink()
    with pytest.raises(BadInput, match="manifest.json is missing or unreadable"):
        resources.check_manifest(built / resources.PARAGRAMCF)
    (built / resources.PARAGRAMCF / resources.MANIFEST).write_text("[garbage")
    with pytest.raises(BadInput, match="manifest.json is missing or unreadable"):
        resources.check_manifest(built / resources.PARAGRAMCF)


def test_a_folder_without_the_vectors_needs_no_manifest(tmp_path):
    resources.check_manifest(tmp_path / resources.PARAGRAMCF)


def test_status_counts_vectors_without_a_manifest_as_missing(built):
    (built / resources.PARAGRAMCF / resources.MANIFEST).unlink()
    rows = {row["name"]: row for row in resources.status(built)}
    assert rows["counter-fitted-vectors"]["status"] == "missing"
