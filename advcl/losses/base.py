"""What a loss is: an ``nn.Module`` named for recipes (``name``) and configured by its nested ``Config`` dataclass,
the recipe's ``[loss]`` table (or an objective's ``[objective.<field>]`` table) validated by
:func:`advcl.config.validate.build`. ``forward`` takes whatever its objective passes: features, logits, labels.
"""

from __future__ import annotations

from typing import ClassVar

from torch import nn


class Loss(nn.Module):
    """Base of the built-in losses (``advcl.api.Loss`` for plugins): ``Loss()`` takes the Config's defaults,
    ``Loss(Loss.Config(...))`` the given values. A loss that needs more (sizes, an encoder to copy) takes it as
    keyword arguments after the config and calls ``super().__init__(config)`` first."""

    name: ClassVar[str]
    Config: ClassVar[type]

    def __init__(self, config=None):
        super().__init__()
        self.config = config or self.Config()
