"""Waveform adversarial attacks (FGSM, PGD) with the perturbation size given as an SNR in dB.

Pure functions of a differentiable ``forward(wave [B, T], lengths [B]) -> logits [B, C]`` (for the
project's model: its network, ``model.network``, in eval mode, so no augmentation and no dropout).

Definitions (per utterance ``x`` with ``L`` valid samples; padding is never perturbed):

* ``RMS(v) = sqrt(mean(v[:L]**2))`` over the valid samples of the utterance (silence included);
* the SNR of a perturbation ``δ`` is ``20·log10(RMS(x) / RMS(δ))``;
* the budget of an attack at ``snr_db`` is ``ε = RMS(x)·10^(−snr_db/20)``: the L∞ bound whose
  full-sign perturbation (``|δ_t| = ε`` on every valid sample) has exactly that SNR.
* **FGSM**: ``δ = ε' · sign(∇_x CE(f(x), y))`` on the valid samples, where ``ε' = ε / sqrt(q)`` and
  ``q`` is the fraction of valid samples with a non-zero gradient (``q = 1`` in practice, so
  ``ε' = ε``); this makes ``RMS(δ) = ε`` exactly, i.e. the SNR is exactly ``snr_db``. A row whose
  gradient is zero everywhere is left unperturbed.
* **PGD** (Madry et al. 2018, untargeted, L∞): start at a uniform random point of the ε-ball
  (seeded), ``steps`` iterations of ``δ ← clip_ε(δ + α·sign(∇))`` with ``α = 2.5·ε/steps``, padding
  kept at 0. ``|δ| ≤ ε`` everywhere, hence ``RMS(δ) ≤ ε`` and the SNR is at least ``snr_db``.
* No clipping of ``x + δ`` to [-1, 1] (that would change the SNR); labels are the true labels.
"""

from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F
from torch import Tensor

Forward = Callable[[Tensor, Tensor], Tensor]


def valid_mask(wave: Tensor, lengths: Tensor) -> Tensor:
    """Float mask ``[B, T]``: 1 on valid samples, 0 on padding."""
    steps = torch.arange(wave.size(1), device=wave.device)
    return (steps.unsqueeze(0) < lengths.to(wave.device).unsqueeze(1)).to(wave.dtype)


def rms(wave: Tensor, lengths: Tensor) -> Tensor:
    """RMS over the valid samples of each row -> ``[B]``."""
    mask = valid_mask(wave, lengths)
    n = mask.sum(1).clamp(min=1.0)
    return torch.sqrt(((wave * mask) ** 2).sum(1) / n)


def snr_db(signal: Tensor, perturbation: Tensor, lengths: Tensor) -> Tensor:
    """``20·log10(RMS(signal)/RMS(perturbation))`` per row (inf for a zero perturbation)."""
    return 20 * torch.log10(rms(signal, lengths) / rms(perturbation, lengths))


def epsilon_for_snr(wave: Tensor, lengths: Tensor, snr: float) -> Tensor:
    """The per-row L∞ budget ``ε = RMS(x)·10^(−snr/20)`` -> ``[B]``."""
    return rms(wave, lengths) * 10.0 ** (-snr / 20.0)


def _loss_grad(forward: Forward, wave: Tensor, lengths: Tensor, labels: Tensor) -> Tensor:
    x = wave.detach().requires_grad_(True)
    loss = F.cross_entropy(forward(x, lengths), labels, reduction="sum")
    (grad,) = torch.autograd.grad(loss, x)
    return grad


def fgsm(forward: Forward, wave: Tensor, lengths: Tensor, labels: Tensor, snr: float) -> Tensor:
    """Adversarial waves ``x + δ`` whose perturbation has exactly ``snr`` dB SNR (see module doc)."""
    mask = valid_mask(wave, lengths)
    direction = torch.sign(_loss_grad(forward, wave, lengths, labels)) * mask
    n_valid = mask.sum(1).clamp(min=1.0)
    frac_nonzero = (direction != 0).to(wave.dtype).sum(1) / n_valid
    eps = epsilon_for_snr(wave, lengths, snr)
    scale = torch.where(frac_nonzero > 0, eps / frac_nonzero.clamp(min=1e-12).sqrt(), torch.zeros_like(eps))
    return (wave + scale.unsqueeze(1) * direction).detach()


def pgd(
    forward: Forward,
    wave: Tensor,
    lengths: Tensor,
    labels: Tensor,
    snr: float,
    steps: int = 10,
    step_ratio: float = 2.5,
    random_start: bool = True,
    seed: int = 0,
) -> Tensor:
    """L∞ PGD inside the ε-ball of ``snr`` dB (``|δ| ≤ ε``, padding untouched; see module doc)."""
    mask = valid_mask(wave, lengths)
    eps = epsilon_for_snr(wave, lengths, snr).unsqueeze(1)  # [B, 1]
    alpha = step_ratio * eps / max(steps, 1)
    if random_start:
        gen = torch.Generator(device="cpu").manual_seed(seed)
        noise = torch.rand(wave.shape, generator=gen, dtype=wave.dtype).to(wave.device)
        delta = (2 * noise - 1) * eps * mask
    else:
        delta = torch.zeros_like(wave)
    for _ in range(steps):
        grad = _loss_grad(forward, wave + delta, lengths, labels)
        delta = delta + alpha * torch.sign(grad)
        delta = torch.maximum(torch.minimum(delta, eps), -eps) * mask
    return (wave + delta).detach()


ATTACKS: dict[str, Callable[..., Tensor]] = {"fgsm": fgsm, "pgd": pgd}
