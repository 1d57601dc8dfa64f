"""MLLM-width -> DiT-width projections. The last layer starts at zero so a fresh connector adds nothing."""

from __future__ import annotations

from torch import nn


class _ZeroInitMLP(nn.Sequential):
    """Linear -> GELU(tanh) -> Linear with a zero last layer.

    A `Sequential` keeps the released parameter names (`0.weight`, `2.weight`), so released
    `connector.*` / `ref_connector.*` weights load without renaming.
    """

    def __init__(self, in_dim: int, out_dim: int) -> None:
        super().__init__(nn.Linear(in_dim, out_dim), nn.GELU(approximate="tanh"), nn.Linear(out_dim, out_dim))
        nn.init.zeros_(self[2].weight)
        nn.init.zeros_(self[2].bias)


class QueryConnector(_ZeroInitMLP):
    """Maps the learnable-query features (instruction + source understanding) into DiT context."""


class LatentConnector(_ZeroInitMLP):
    """Maps the reference image's own vision-token features into DiT context (stage 3)."""
