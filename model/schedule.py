"""Flow-matching sigma schedule (shift 5) and the Euler sampler step with upstream's numerics (docs/contract.md §4).

Upstream reference (showlab/Kiwi-Edit 223572d): `FlowMatchScheduler.set_timesteps` with
`extra_one_step=True` (diffsynth/schedulers/flow_match.py) and the released diffusers pipeline's
`_setup_scheduler` / `_scheduler_step` / `_scheduler_get_sigma` (utils/convert_diffusers/pipeline_kiwi_edit.py).
Tables are built in float32 exactly as there, so sigmas and timesteps match bit for bit.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

SIGMA_MIN = 0.003 / 1.002  # inference floor of the released diffusers pipeline
TRAIN_SIGMA_MIN = 0.0  # upstream training: WanVideoPipeline builds FlowMatchScheduler(sigma_min=0.0)
NUM_TRAIN_TIMESTEPS = 1000


def shift_sigmas(sigmas: torch.Tensor, shift: float) -> torch.Tensor:
    """s' = shift*s / (1 + (shift-1)*s): spends more steps at high noise."""
    return shift * sigmas / (1 + (shift - 1) * sigmas)


def flow_sigmas(
    num_steps: int,
    shift: float = 5.0,
    sigma_min: float = SIGMA_MIN,
    sigma_max: float = 1.0,
    denoising_strength: float = 1.0,
) -> torch.Tensor:
    """float32 linspace(start, sigma_min, steps+1)[:-1], then shifted (upstream `set_timesteps`)."""
    start = sigma_min + (sigma_max - sigma_min) * denoising_strength
    sigmas = torch.linspace(start, sigma_min, num_steps + 1, dtype=torch.float32)[:-1]
    return shift_sigmas(sigmas, shift)


def inference_sigmas(num_steps: int, shift: float = 5.0, denoising_strength: float = 1.0) -> torch.Tensor:
    """linspace(start, 0.003/1.002, steps+1)[:-1], shifted, in float32. Timesteps are 1000 * sigma."""
    return flow_sigmas(num_steps, shift, SIGMA_MIN, denoising_strength=denoising_strength)


def sigma_index(timesteps: torch.Tensor, timestep: torch.Tensor) -> torch.Tensor:
    """Index of the table timestep nearest to each given one (upstream `get_sigma`/`add_noise` lookup:
    `argmin(|timesteps - t|)`), so a timestep rounded to bf16 maps back to a table sigma."""
    t = timestep.reshape(-1, 1).to(device=timesteps.device, dtype=torch.float32)
    return (timesteps.reshape(1, -1) - t).abs().argmin(dim=1)


def euler_step(sample: torch.Tensor, velocity: torch.Tensor, sigmas: torch.Tensor, index: int) -> torch.Tensor:
    """x <- x + v * (s_next - s), with s_next = 0 after the last step (upstream `_scheduler_step`).

    The step size is a 0-dim float32 tensor and the arithmetic runs in the sample's dtype, as upstream:
    with bf16 latents the product is rounded to bf16 before the bf16 add; float32 latents keep the
    whole update in float32 (the velocity is upcast first).
    """
    sigma = sigmas[index]
    sigma_next = sigmas[index + 1] if index + 1 < len(sigmas) else 0.0
    return sample + velocity.to(sample.dtype) * (sigma_next - sigma)


def sample_flow(
    velocity_fn: Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor],
    noise: torch.Tensor,
    num_steps: int = 50,
    shift: float = 5.0,
    progress: Callable | None = None,
) -> torch.Tensor:
    """Integrate from noise (sigma=1) to data (sigma=0) in the noise's dtype.

    `velocity_fn(x, timestep, sigma)` gets the timestep (1000*sigma, shape (B,)) and sigma (B,).
    """
    sigmas = inference_sigmas(num_steps, shift).to(noise.device)
    x = noise
    steps = range(len(sigmas))
    for i in progress(steps) if progress is not None else steps:
        sigma = sigmas[i].expand(noise.shape[0])
        v = velocity_fn(x, sigma * NUM_TRAIN_TIMESTEPS, sigma)
        x = euler_step(x, v, sigmas, i)
    return x
