"""FGSM/PGD waveform attacks with an SNR budget (mtl_aug.evaluation.attacks)."""

import pytest
import torch
from torch import nn

from mtl_aug.evaluation import attacks


class ToyModel(nn.Module):
    """Linear in the valid samples (padding ignored): logits = [w·x, -w·x]; labels are its own predictions."""

    def __init__(self, t: int, seed: int = 0) -> None:
        super().__init__()
        self.w = nn.Parameter(torch.randn(t, generator=torch.Generator().manual_seed(seed)))

    def forward(self, wave, lengths):
        mask = attacks.valid_mask(wave, lengths)
        s = (wave * mask * self.w[: wave.size(1)]).sum(1, keepdim=True) / lengths.unsqueeze(1).sqrt()
        return torch.cat([s, -s], 1)


@pytest.fixture()
def batch():
    g = torch.Generator().manual_seed(1)
    t = 800
    lengths = torch.tensor([800, 500, 650, 300, 777, 420, 800, 610])
    wave = 0.1 * torch.randn(len(lengths), t, generator=g) * attacks.valid_mask(torch.zeros(len(lengths), t), lengths)
    model = ToyModel(t).eval()
    labels = model(wave, lengths).argmax(1)  # clean accuracy 100 %
    return model, wave, lengths, labels


@pytest.mark.parametrize("snr", [40.0, 30.0, 20.0])
def test_fgsm_has_exact_snr_and_leaves_padding(batch, snr):
    model, wave, lengths, labels = batch
    adv = attacks.fgsm(model, wave, lengths, labels, snr)
    delta = adv - wave
    measured = attacks.snr_db(wave, delta, lengths)
    assert torch.allclose(measured, torch.full_like(measured, snr), atol=0.1), measured
    pad = 1 - attacks.valid_mask(wave, lengths)
    assert float((delta * pad).abs().max()) == 0.0
    assert torch.allclose(delta.abs().amax(1), attacks.epsilon_for_snr(wave, lengths, snr), rtol=1e-4)


def test_pgd_stays_in_budget_and_lowers_accuracy(batch):
    model, wave, lengths, labels = batch
    snr = 30.0
    eps = attacks.epsilon_for_snr(wave, lengths, snr)
    adv = attacks.pgd(model, wave, lengths, labels, snr, steps=10, seed=0)
    delta = adv - wave
    assert bool((delta.abs().amax(1) <= eps * (1 + 1e-5)).all())
    assert bool((attacks.snr_db(wave, delta, lengths) >= snr - 1e-3).all())
    pad = 1 - attacks.valid_mask(wave, lengths)
    assert float((delta * pad).abs().max()) == 0.0
    clean_acc = (model(wave, lengths).argmax(1) == labels).float().mean()
    adv_acc = (model(adv, lengths).argmax(1) == labels).float().mean()
    assert clean_acc == 1.0 and adv_acc < 0.5
    # deterministic (seeded random start)
    assert torch.equal(adv, attacks.pgd(model, wave, lengths, labels, snr, steps=10, seed=0))
    # and at least as strong as FGSM on this model
    fgsm_acc = (model(attacks.fgsm(model, wave, lengths, labels, snr), lengths).argmax(1) == labels).float().mean()
    assert adv_acc <= fgsm_acc
