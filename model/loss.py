"""Flow-matching training objective (docs/contract.md §3.1): shifted timesteps, velocity target, bump weights."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from model.schedule import NUM_TRAIN_TIMESTEPS, SIGMA_MIN, shift_sigmas


def training_sigmas(shift: float = 5.0, num_timesteps: int = NUM_TRAIN_TIMESTEPS) -> torch.Tensor:
    """The 1000 shifted training sigmas (same construction as inference with 1000 steps)."""
    sigmas = torch.linspace(1.0, SIGMA_MIN, num_timesteps + 1, dtype=torch.float64)[:-1]
    return shift_sigmas(sigmas, shift).float()


def timestep_weights(shift: float = 5.0, num_timesteps: int = NUM_TRAIN_TIMESTEPS) -> torch.Tensor:
    """A Gaussian bump over timesteps peaking at t=500 (sigma 0.5), min 0, mean 1 over the schedule."""
    t = training_sigmas(shift, num_timesteps) * num_timesteps
    y = torch.exp(-2 * ((t - num_timesteps / 2) / num_timesteps) ** 2)
    y = y - y.min()
    return y * (num_timesteps / y.sum())


@dataclass
class FlowMatchingSample:
    """Everything one training step needs besides the model call."""

    noisy: torch.Tensor  # x_t = (1 - s) x0 + s eps
    target: torch.Tensor  # v = eps - x0
    sigma: torch.Tensor  # (B,)
    timestep: torch.Tensor  # (B,) = 1000 * sigma
    weight: torch.Tensor  # (B,)


def sample_flow_matching(
    x0: torch.Tensor, shift: float = 5.0, generator: torch.Generator | None = None
) -> FlowMatchingSample:
    """Draw a uniform timestep index per sample, noise x0 and return the velocity target."""
    batch = x0.shape[0]
    sigmas = training_sigmas(shift).to(x0.device)
    weights = timestep_weights(shift).to(x0.device)
    idx = torch.randint(0, len(sigmas), (batch,), generator=generator, device="cpu").to(x0.device)
    noise = torch.randn(x0.shape, generator=generator, device="cpu", dtype=torch.float32).to(x0.device)
    sigma = sigmas[idx]
    s = sigma.view(-1, *([1] * (x0.dim() - 1)))
    noisy = ((1 - s) * x0.float() + s * noise).to(x0.dtype)
    return FlowMatchingSample(noisy, (noise - x0.float()), sigma, sigma * NUM_TRAIN_TIMESTEPS, weights[idx])


def flow_matching_loss(prediction: torch.Tensor, sample: FlowMatchingSample) -> torch.Tensor:
    """Per-sample MSE against the velocity target, times the timestep bump weight, averaged."""
    per_sample = ((prediction.float() - sample.target.float()) ** 2).flatten(1).mean(1)
    return (per_sample * sample.weight).mean()
