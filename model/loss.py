"""Flow-matching training objective (docs/contract.md §3.1): shifted timesteps, velocity target, bump weights.

Upstream reference (showlab/Kiwi-Edit 223572d): `WanVideoPipeline.training_loss` with the scheduler
`FlowMatchScheduler(shift=5, sigma_min=0.0, extra_one_step=True).set_timesteps(1000, training=True)`.
The drawn timestep is rounded to the model dtype and the sample is noised at the table sigma nearest to
that rounded timestep (upstream's `add_noise`/`get_sigma`/`training_weight` all look it up by argmin).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from model.schedule import NUM_TRAIN_TIMESTEPS, TRAIN_SIGMA_MIN, flow_sigmas, sigma_index


def training_sigmas(
    shift: float = 5.0, num_timesteps: int = NUM_TRAIN_TIMESTEPS, sigma_min: float = TRAIN_SIGMA_MIN
) -> torch.Tensor:
    """The 1000 shifted training sigmas: float32 linspace(1, sigma_min, 1001)[:-1], shifted.

    Upstream trains with sigma_min = 0 (last sigma 0.0050 at shift 5); inference uses 0.003/1.002.
    """
    return flow_sigmas(num_timesteps, shift, sigma_min)


def timestep_weights(
    shift: float = 5.0, num_timesteps: int = NUM_TRAIN_TIMESTEPS, sigma_min: float = TRAIN_SIGMA_MIN
) -> torch.Tensor:
    """A Gaussian bump over timesteps peaking at t=500 (sigma 0.5), min 0, mean 1 over the schedule."""
    t = training_sigmas(shift, num_timesteps, sigma_min) * NUM_TRAIN_TIMESTEPS
    y = torch.exp(-2 * ((t - num_timesteps / 2) / num_timesteps) ** 2)
    y = y - y.min()
    return y * (num_timesteps / y.sum())


@dataclass
class FlowMatchingSample:
    """Everything one training step needs besides the model call."""

    noisy: torch.Tensor  # x_t = (1 - s) x0 + s eps
    target: torch.Tensor  # v = eps - x0
    sigma: torch.Tensor  # (B,) float32
    timestep: torch.Tensor  # (B,) = 1000 * sigma, rounded to the model dtype
    weight: torch.Tensor  # (B,)


def sample_flow_matching(
    x0: torch.Tensor,
    shift: float = 5.0,
    generator: torch.Generator | None = None,
    sigma_min: float = TRAIN_SIGMA_MIN,
    dtype: torch.dtype | None = None,
) -> FlowMatchingSample:
    """Draw a uniform timestep index per sample, noise x0 and return the velocity target.

    `dtype` is the model dtype (default: x0's). With bf16, as upstream: the timestep is rounded to bf16,
    the sigma/weight are the table entries nearest to it, and `(1 - s) * x0 + s * eps` runs on bf16 x0 and
    noise with s a 0-dim float32 tensor (each product rounded to bf16 before the add). With float32
    nothing is rounded.
    """
    dtype = x0.dtype if dtype is None else dtype
    batch = x0.shape[0]
    sigmas = training_sigmas(shift, sigma_min=sigma_min)
    timesteps = sigmas * NUM_TRAIN_TIMESTEPS
    weights = timestep_weights(shift, sigma_min=sigma_min)
    drawn = torch.randint(0, len(sigmas), (batch,), generator=generator, device="cpu")
    noise = torch.randn(x0.shape, generator=generator, device="cpu", dtype=torch.float32).to(x0.device, dtype)
    timestep = timesteps[drawn].to(dtype)
    idx = sigma_index(timesteps, timestep)
    sigma = sigmas[idx].to(x0.device)
    x0 = x0.to(dtype)
    # upstream's op per sample: (1 - s) * x0 + s * eps with s a 0-dim float32 tensor
    noisy = torch.stack([(1 - s) * x + s * n for s, x, n in zip(sigma, x0, noise)])
    return FlowMatchingSample(noisy, noise - x0, sigma, timestep.to(x0.device), weights[idx].to(x0.device))


def flow_matching_loss(prediction: torch.Tensor, sample: FlowMatchingSample) -> torch.Tensor:
    """Per-sample MSE against the velocity target (both upcast to float32), times the timestep weight, averaged."""
    per_sample = ((prediction.float() - sample.target.float()) ** 2).flatten(1).mean(1)
    return (per_sample * sample.weight).mean()
