"""advcl-noise: the perturber's noise, its projection, and its use by advcl's own pgd_at objective."""

import pytest
import torch

from advcl import plugins
from advcl.api import ComponentSpec, RecipeError, build
from advcl_noise.gaussian import GaussianNoise

MASK = torch.tensor([[1, 1, 1, 1, 1, 1], [1, 1, 1, 1, 0, 0]])


def never_called(embeds):
    raise AssertionError("random noise needs no loss")


@pytest.fixture(autouse=True)
def with_the_plugin(monkeypatch):
    monkeypatch.setattr(plugins, "_REGISTRY", plugins.load_registry(autoload=True))


def test_installed_plugin_is_discovered_with_its_version():
    found = plugins.registry().get("perturber", "gaussian_noise")
    assert (found.plugin, found.version, found.cls) == ("advcl-noise", "0.1.0", GaussianNoise)


def test_noise_has_scale_sigma_and_spares_padding():
    torch.manual_seed(0)
    embeds = torch.zeros(2, 6, 512)
    delta = GaussianNoise(GaussianNoise.Config(sigma=0.5))(never_called, embeds, MASK)
    assert torch.equal(delta[1, 4:], torch.zeros(2, 512))
    assert delta[MASK.bool()].std().item() == pytest.approx(0.5, rel=0.05)


@pytest.mark.parametrize(("norm", "scope"), [("l2", "sentence"), ("l2", "token"), ("linf", "sentence")])
def test_projection_keeps_noise_inside_the_ball(norm, scope):
    torch.manual_seed(0)
    delta = GaussianNoise(GaussianNoise.Config(sigma=1.0, eps=0.1, norm=norm, scope=scope))(
        never_called, torch.zeros(2, 6, 16), MASK
    )
    if norm == "linf":
        size = delta.abs().amax()
    else:
        size = delta.flatten(1).norm(dim=1).max() if scope == "sentence" else delta.norm(dim=-1).max()
    assert size.item() == pytest.approx(0.1, rel=1e-5)  # σ = 1 noise is far outside: it lands on the edge


def test_negative_sigma_is_a_recipe_error():
    with pytest.raises(RecipeError, match="'perturber.sigma' must not be negative"):
        build(GaussianNoise.Config, {"sigma": -1.0}, "perturber")
    cls = plugins.registry().get("objective", "pgd_at").cls
    with pytest.raises(RecipeError, match=r"^'objective\.perturber\.eps' must not be negative"):
        build(cls.Config, {"perturber": {"name": "gaussian_noise", "eps": -0.5}}, "objective")


def test_pgd_at_accepts_it_by_name():
    cls = plugins.registry().get("objective", "pgd_at").cls
    config = build(cls.Config, {"perturber": {"name": "gaussian_noise", "sigma": 0.02}, "clean_weight": 1.0}, "objective")
    assert config.perturber == ComponentSpec("perturber", "gaussian_noise", GaussianNoise.Config(sigma=0.02))
