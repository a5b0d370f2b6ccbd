"""Helpers shared by the loss test modules: gradients and a scale-aware closeness assertion."""

from __future__ import annotations

import torch


def grad_of(loss: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    (g,) = torch.autograd.grad(loss, x)
    return g


def assert_close(a: torch.Tensor, b: torch.Tensor, rtol: float) -> None:
    """a == b to rtol relative to the largest |b| (so near-zero entries do not demand exact zeros)."""
    a, b = a.detach().double(), b.detach().double()
    scale = float(b.abs().max()) if b.numel() else 1.0
    assert torch.allclose(a, b, rtol=rtol, atol=rtol * max(scale, 1e-30)), float((a - b).abs().max())
