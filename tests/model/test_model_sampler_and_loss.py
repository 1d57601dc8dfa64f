"""Flow-matching schedule, Euler sampler and training loss follow docs/contract.md §3 and §4."""

from __future__ import annotations

import torch

from model.loss import flow_matching_loss, sample_flow_matching, timestep_weights, training_sigmas
from model.schedule import inference_sigmas, sample_flow


def test_inference_sigmas_match_released_formula():
    """Sampling uses linspace(1, 0.003/1.002, N+1)[:-1] shifted by 5: s' = 5s/(1+4s)."""
    n = 50
    s = [1 + (0.003 / 1.002 - 1) * i / n for i in range(n)]
    expected = torch.tensor([5 * x / (1 + 4 * x) for x in s])
    got = inference_sigmas(n, shift=5.0)
    assert got.shape == (n,)
    assert torch.allclose(got, expected, atol=1e-6)
    assert got[0] == 1.0 and got[-1] > 0.0


def test_euler_sampler_recovers_known_target():
    """A model that predicts the exact velocity (x - x0)/s drives 50 Euler steps from noise to x0."""
    g = torch.Generator().manual_seed(0)
    x0 = torch.randn(2, 4, 3, 5, 5, generator=g)
    noise = torch.randn(x0.shape, generator=g)
    calls = []

    def velocity(x, timestep, sigma):
        calls.append(float(timestep[0]))
        return (x - x0) / sigma.view(-1, 1, 1, 1, 1)

    out = sample_flow(velocity, noise, num_steps=50, shift=5.0)
    assert len(calls) == 50 and abs(calls[0] - 1000.0) < 1e-3
    assert torch.allclose(out, x0, atol=1e-4), (out - x0).abs().max()
    assert (noise - x0).abs().max() > 1.0  # the start was far from the target


def test_timestep_weights_bump_peaks_near_half():
    """The loss weight is a bump over timesteps peaking near sigma 0.5, zero at its minimum, mean 1."""
    w = timestep_weights(5.0)
    s = training_sigmas(5.0)
    assert abs(float(w.mean()) - 1.0) < 1e-4
    assert abs(float(s[int(w.argmax())]) - 0.5) < 0.01
    assert float(w.min()) == 0.0


def test_flow_matching_sample_and_loss():
    """x_t = (1-s) x0 + s eps, target eps - x0; a perfect prediction gives zero loss, a wrong one does not."""
    x0 = torch.randn(3, 48, 2, 4, 4)
    fm = sample_flow_matching(x0, generator=torch.Generator().manual_seed(0))
    s = fm.sigma.view(-1, 1, 1, 1, 1)
    eps = fm.target + x0
    assert torch.allclose(fm.noisy, (1 - s) * x0 + s * eps, atol=1e-5)
    assert torch.allclose(fm.timestep, fm.sigma * 1000)
    assert float(flow_matching_loss(fm.target, fm)) == 0.0
    assert float(flow_matching_loss(torch.zeros_like(fm.target), fm)) > 0.0 or float(fm.weight.sum()) == 0.0
