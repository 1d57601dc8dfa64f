"""Small helpers shared by the model tests (random media, CLI runner that mimics the main `kiwi`)."""

from __future__ import annotations

import numpy as np
import torch
import typer
from PIL import Image
from typer.testing import CliRunner

from kiwi_platform.cli.model_cmds import register
from kiwi_platform.errors import KiwiUserError


def random_frames(n: int, width: int = 64, height: int = 64, seed: int = 0) -> list[Image.Image]:
    rng = np.random.default_rng(seed)
    return [Image.fromarray(rng.integers(0, 256, (height, width, 3), dtype=np.uint8)) for _ in range(n)]


def randomize_zero_init(pipe, seed: int = 1, std: float = 0.05) -> None:
    """Give zero-initialised parts (connectors, embedders, LoRA B) random values so outputs depend on them."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for module in (pipe.mllm_encoder, pipe.source_embedder, pipe.ref_embedder):
            for _name, p in module.named_parameters():
                if torch.count_nonzero(p) == 0:
                    p.copy_(torch.randn(p.shape, generator=g) * std)


def run_cli(*args: str) -> tuple[int, str]:
    """Invoke like the main CLI does: a KiwiUserError becomes `error: <message>` and exit 2."""
    app = typer.Typer()
    register(app)

    @app.callback()
    def _root() -> None:  # keep `edit` a subcommand even when it is the only command
        pass

    result = CliRunner().invoke(app, list(args))
    if isinstance(result.exception, KiwiUserError):
        return result.exception.exit_code, f"error: {result.exception.message}"
    if result.exception and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.output
