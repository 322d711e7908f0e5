"""The mutant list of ``make mutation`` follows the code: every mutant's snippet is found exactly once in its file,
every mutant names tests that exist, and the runner refuses a list that has drifted (issue 12)."""

import importlib.util
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def runner():
    spec = importlib.util.spec_from_file_location("mutation_run", ROOT / "tests" / "mutation" / "run.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def test_every_mutant_snippet_occurs_exactly_once_and_its_tests_exist():
    mutants = runner().load_mutants()
    assert len(mutants) >= 80
    covered = {m.file for m in mutants}
    for folder in ("objectives", "losses", "perturbers"):
        assert any(f.startswith(f"advcl/{folder}/") for f in covered), folder
    for mutant in mutants:
        for test in mutant.tests:
            assert (ROOT / test.split("::")[0]).is_file(), (mutant.name, test)
        assert mutant.description, mutant.name


def test_a_drifted_snippet_is_refused_naming_the_mutant(tmp_path):
    run = runner()
    (tmp_path / "advcl").mkdir()
    (tmp_path / "advcl" / "m.py").write_text("x = 1\nx = 1\n")
    listing = tmp_path / "mutants.toml"
    listing.write_text('[[mutant]]\nname = "twice"\nfile = "advcl/m.py"\noriginal = "x = 1"\nreplacement = "x = 2"\n'
                       'description = "d"\ntests = ["t.py"]\n')
    with pytest.raises(run.ListError, match="mutant twice: its original snippet occurs 2 times"):
        run.load_mutants(listing, tmp_path)
    listing.write_text(listing.read_text().replace('original = "x = 1"', 'original = "y = 1"'))
    with pytest.raises(run.ListError, match="occurs 0 times"):
        run.load_mutants(listing, tmp_path)
