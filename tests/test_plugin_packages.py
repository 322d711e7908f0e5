"""The example plugins in plugins/ as a user installs them (pip, into a throwaway folder on PYTHONPATH): advcl
discovers them with their versions, a recipe trains with one by name, the autoload switch turns them off; and
throwaway distributions that are broken in each way are listed with one clear reason each."""

import json
import os
import shutil
import subprocess
import sys
import textwrap
import tomllib

import pytest

from conftest import ROOT, run_cli, write_tiny_recipe

EXAMPLES = ("advcl-supcon", "advcl-noise")


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """``pip install --target SITE --no-deps ./plugins/<name>`` for both examples (built from copies)."""
    target, build = tmp_path_factory.mktemp("site"), tmp_path_factory.mktemp("build")
    sources = [str(shutil.copytree(ROOT / "plugins" / name, build / name)) for name in EXAMPLES]
    done = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation", "--target", str(target), *sources],
        capture_output=True, text=True, timeout=600,
    )
    assert done.returncode == 0, done.stderr
    return target


def plugin_env(folder, autoload: bool = True) -> dict:
    path = os.pathsep.join(p for p in (str(folder), os.environ.get("PYTHONPATH", "")) if p)
    return {"PYTHONPATH": path, "ADVCL_DISABLE_PLUGIN_AUTOLOAD": "0" if autoload else "1"}


def test_installed_plugins_are_listed_with_plugin_name_and_version(site):
    listing = json.loads(run_cli("plugins", "--json", env=plugin_env(site)).stdout)
    for kind, name, plugin in [("loss", "supcon", "advcl-supcon"), ("objective", "supcon", "advcl-supcon"),
                               ("perturber", "gaussian_noise", "advcl-noise")]:
        assert {"kind": kind, "name": name, "plugin": plugin, "version": "0.1.0"} in listing["components"]
    assert listing["broken"] == []
    only = json.loads(run_cli("plugins", "--kind", "perturber", "--json", env=plugin_env(site)).stdout)
    assert {c["kind"] for c in only["components"]} == {"perturber"}


def test_the_autoload_switch_leaves_them_out(site):
    listing = json.loads(run_cli("plugins", "--json", env=plugin_env(site, autoload=False)).stdout)
    names = {c["name"] for c in listing["components"]}
    assert "supcon" not in names and "gaussian_noise" not in names and "vanilla" in names


@pytest.mark.parametrize(("recipe", "unknown"), [("supcon_sst2.toml", "unknown objective 'supcon'"),
                                                 ("gaussian_noise_sst2.toml", "unknown perturber 'gaussian_noise'")])
def test_shipped_recipes_use_the_plugins_by_name(site, recipe, unknown):
    path = str(ROOT / "recipes" / recipe)
    done = run_cli("train", "--recipe", path, "--dry-run", env=plugin_env(site))
    assert done.returncode == 0, done.stderr
    assert tomllib.loads(done.stdout)["objective"]["name"] in ("supcon", "pgd_at")
    without = run_cli("train", "--recipe", path, "--dry-run", env=plugin_env(site, autoload=False))
    assert without.returncode == 2 and unknown in without.stderr


def test_a_tiny_run_trains_with_the_plugin_objective_and_exports_without_its_head(site, tmp_path, tiny_model_dir):
    recipe = write_tiny_recipe(tmp_path, tiny_model_dir, model={"pooling": "mean", "mixed_readout": True},  # hf export
                               data={"max_train_examples": 32, "max_eval_examples": 32},
                               train={"epochs": 1, "eval_every": 0, "save_every": 0},
                               objective={"name": "supcon", "weight": 0.5, "projection_dim": 8})
    done = run_cli("train", "--recipe", str(recipe), "--json", env=plugin_env(site))
    assert done.returncode == 0, done.stderr
    run = tmp_path / "runs" / "tiny"
    assert json.loads(done.stdout)["status"] == "completed"
    logged = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert any("supcon" in row for row in logged if row["split"] == "train")
    exported = run_cli("export", "--model", str(run), "--output", str(tmp_path / "hf"), "--json", env=plugin_env(site))
    assert exported.returncode == 0, exported.stderr
    assert json.loads(exported.stdout)["left_out"] == ["head"]
    assert "exported the encoder and classifier only" in exported.stderr


def test_the_plugins_own_tests_pass(site):
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *(f"plugins/{name}/tests" for name in EXAMPLES)],
        cwd=ROOT, capture_output=True, text=True, timeout=600, env={**os.environ, **plugin_env(site)},
    )
    assert done.returncode == 0, done.stdout[-3000:]


def throwaway_distribution(folder, name: str, entry_point: str, requires: str = "", module: str = "") -> None:
    """A distribution as pip leaves it: ``NAME-1.0.dist-info`` with METADATA and entry_points.txt, and a module."""
    info = folder / f"{name.replace('-', '_')}-1.0.dist-info"
    info.mkdir()
    metadata = f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n"
    (info / "METADATA").write_text(metadata + (f"Requires-Dist: {requires}\n" if requires else ""))
    (info / "entry_points.txt").write_text(f"[advcl]\n{entry_point}\n")
    if module:
        (folder / f"{name.replace('-', '_')}.py").write_text(textwrap.dedent(module))


TAKES_VANILLA = """
    from dataclasses import dataclass
    from advcl.hookspecs import hookimpl

    class Impostor:
        name = "vanilla"

        @dataclass
        class Config:
            pass

    @hookimpl
    def register_objectives(register):
        register(Impostor)
"""


def test_broken_plugins_are_listed_with_one_clear_reason_each(tmp_path, tiny_model_dir):
    site = tmp_path / "site"
    site.mkdir()
    throwaway_distribution(site, "advcl-malformed", "bad = pkg:attr:extra")
    throwaway_distribution(site, "advcl-missing", "missing = advcl_no_such_module")
    throwaway_distribution(site, "advcl-too-new", "too_new = advcl_too_new", requires="advcl>=9.0",
                           module="raise RuntimeError('a plugin whose requirement fails is never imported')")
    throwaway_distribution(site, "advcl-thief", "thief = advcl_thief", module=TAKES_VANILLA)
    listing = json.loads(run_cli("plugins", "--json", env=plugin_env(site)).stdout)
    reasons = {b["plugin"]: b["reason"] for b in listing["broken"]}
    assert reasons == {
        "advcl-malformed": "malformed entry point 'bad = pkg:attr:extra' (expected 'module' or 'module:attribute')",
        "advcl-missing": "import failed: ModuleNotFoundError: No module named 'advcl_no_such_module'",
        "advcl-too-new": "requires advcl>=9.0, but advcl 0.1.0 is installed",
        "advcl-thief": "objective 'vanilla' is already registered by advcl.objectives.vanilla 0.1.0",
    }
    vanilla = [c for c in listing["components"] if c["name"] == "vanilla"]
    assert vanilla == [{"kind": "objective", "name": "vanilla", "plugin": "advcl.objectives.vanilla", "version": "0.1.0"}]
    # any other command warns once per broken plugin, one line each, and still works
    done = run_cli("train", "--recipe", str(write_tiny_recipe(tmp_path, tiny_model_dir)), "--dry-run", env=plugin_env(site))
    assert done.returncode == 0 and tomllib.loads(done.stdout)["objective"]["name"] == "vanilla"
    warnings = [line for line in done.stderr.splitlines() if line.strip()]
    assert sorted(warnings) == sorted(f"warning: advcl plugin {p} 1.0 is broken: {r}" for p, r in reasons.items())
