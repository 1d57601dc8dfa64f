"""Flow-matching sigma schedule (shift 5) and the Euler sampler step, exactly as released (docs/contract.md §4)."""

from __future__ import annotations

from collections.abc import Callable

import torch

SIGMA_MIN = 0.003 / 1.002
NUM_TRAIN_TIMESTEPS = 1000


def shift_sigmas(sigmas: torch.Tensor, shift: float) -> torch.Tensor:
    """s' = shift*s / (1 + (shift-1)*s): spends more steps at high noise."""
    return shift * sigmas / (1 + (shift - 1) * sigmas)


def inference_sigmas(num_steps: int, shift: float = 5.0, denoising_strength: float = 1.0) -> torch.Tensor:
    """linspace(start, 0.003/1.002, steps+1)[:-1], shifted. Timesteps are 1000 * sigma."""
    start = SIGMA_MIN + (1.0 - SIGMA_MIN) * denoising_strength
    sigmas = torch.linspace(start, SIGMA_MIN, num_steps + 1, dtype=torch.float64)[:-1]
    return shift_sigmas(sigmas, shift).float()


def euler_step(sample: torch.Tensor, velocity: torch.Tensor, sigmas: torch.Tensor, index: int) -> torch.Tensor:
    """x <- x + v * (s_next - s), with s_next = 0 after the last step."""
    sigma = float(sigmas[index])
    sigma_next = float(sigmas[index + 1]) if index + 1 < len(sigmas) else 0.0
    return (sample.float() + velocity.float() * (sigma_next - sigma)).to(sample.dtype)


def sample_flow(
    velocity_fn: Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor],
    noise: torch.Tensor,
    num_steps: int = 50,
    shift: float = 5.0,
    progress: Callable | None = None,
) -> torch.Tensor:
    """Integrate from noise (sigma=1) to data (sigma=0).

    `velocity_fn(x, timestep, sigma)` gets the timestep (1000*sigma, shape (B,)) and sigma (B,).
    """
    sigmas = inference_sigmas(num_steps, shift)
    x = noise
    steps = range(len(sigmas))
    for i in progress(steps) if progress is not None else steps:
        sigma = sigmas[i].to(noise.device).expand(noise.shape[0])
        v = velocity_fn(x, sigma * NUM_TRAIN_TIMESTEPS, sigma)
        x = euler_step(x, v, sigmas, i)
    return x
