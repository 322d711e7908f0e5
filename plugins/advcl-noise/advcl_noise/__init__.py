"""advcl-noise: registers the ``gaussian_noise`` perturber with advcl."""

from advcl.api import hookimpl
from advcl_noise.gaussian import GaussianNoise

__version__ = "0.1.0"


@hookimpl
def register_perturbers(register):
    register(GaussianNoise)
