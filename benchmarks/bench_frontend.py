"""Front-end and augmentation throughput on the CPU (part of ``bench_data``)."""

from __future__ import annotations


import common

# -- front end and augmentation throughput ---------------------------------------------------------------
def front_end_before_power_change(fe):
    """A copy of ``fe`` whose mel spectrogram is torchaudio's own (power as ``abs().pow(2)``): the front end
    before the ``PowerMelSpectrogram`` change, kept here for the before/after figure."""
    import copy

    import torchaudio

    old = copy.deepcopy(fe)
    if type(old.mel) is not torchaudio.transforms.MelSpectrogram:
        old.mel.__class__ = torchaudio.transforms.MelSpectrogram
    return old


def measure_frontend_augment(batch_size: int = 32, seconds: float = 3.0, rounds: int = 7, warmup: int = 1) -> dict:
    """x real time (seconds of audio per second) of the front end, each augmentation and the whole policy,
    batched on one CPU thread, no autograd (the policy runs on waveforms without gradients in training)."""
    import torch

    from mtl_aug.augmentations import Mixup, SpecAugment, SpeedPerturb

    import bench_training as bt

    from mtl_aug.tasks.base import soft_targets

    module = bt.make_module("mtl_aug")
    fe, policy = module.front_end, module.augment
    batch = bt.make_rows(batch_size, seconds)
    wave, lengths = batch["wave"], batch["lengths"]
    targets = soft_targets(batch["label"], 4)
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        feats, frame_lengths = fe(wave, lengths)
    policy_args = module.hparams["augment"]["init_args"]
    kw = {k: policy_args[k] for k in ("speed_factors", "freq_mask_param", "time_mask_param", "n_freq_masks",
                                      "n_time_masks", "mixup_alpha")}
    speed, spec, mix = SpeedPerturb(sample_rate=fe.sample_rate, **kw), SpecAugment(**kw), Mixup(**kw)
    fe_before = front_end_before_power_change(fe)
    fns = {
        "front_end": lambda: fe(wave, lengths),
        "speed": lambda: speed.on_wave(wave, lengths, g),
        "specaug": lambda: spec.on_feats(feats, frame_lengths, targets, g),
        "mixup": lambda: mix.on_feats(feats, frame_lengths, targets, g),
        "policy": lambda: policy(wave, lengths, targets, fe),
        "front_end_before": lambda: fe_before(wave, lengths),
    }
    with torch.no_grad(), common.one_thread():
        res = common.compare(fns, "front_end", rounds, warmup)
    audio = batch_size * seconds
    out: dict = {"batch_size": batch_size, "seconds": seconds, "threads": 1, "rounds": rounds, "parts": {}}
    for name, r in res.items():
        out["parts"][name] = {**r, "x_realtime": round(audio / r["median_s"], 1)}
    out["notes"] = {
        "front_end": "LogMelFrontEnd: STFT, mel, log with floor, utterance normalisation, masking",
        "speed": "every row speed-perturbed (one of speed_factors each), waveform; in the policy only a chunk is",
        "specaug": "every row masked, on log-mels", "mixup": "every row mixed, on log-mels",
        "policy": "the whole AugmentationPolicy on a batch: chunking, speed on its chunk, ONE front-end pass "
                  "(its output is also clean_feats), SpecAugment and mixup on their chunks",
        "front_end_before": "before: torchaudio's MelSpectrogram power as abs().pow(2) (see bench_history.md)",
    }
    out["speedups"] = {
        "front_end_power": round(res["front_end_before"]["median_s"] / res["front_end"]["median_s"], 3),
    }
    return out


class _FunctionalSpeed:
    """Drop-in for one ``torchaudio.transforms.Speed`` that calls ``torchaudio.functional.resample`` (which
    rebuilds its sinc kernel on every call) instead of the transform's cached kernel."""

    def __init__(self, speed) -> None:
        self.src, self.tgt = speed.source_sample_rate, speed.target_sample_rate

    def __call__(self, wave, lengths):
        import torch
        import torchaudio

        out = torchaudio.functional.resample(wave, self.src, self.tgt)
        return out, torch.ceil(lengths * self.tgt / self.src).to(lengths.dtype)


def measure_speed_variants(batch_size: int = 32, seconds: float = 3.0, rounds: int = 7, warmup: int = 1,
                           factors=(0.9, 1.1), sample_rate: int = 16000) -> dict:
    """Speed perturbation of a whole batch (random factor per row), one thread, three implementations that
    all return the same padded batch + lengths (the policy's ``SpeedPerturb.on_wave`` assembly):
    ``torchaudio.transforms.Speed`` per factor group (the policy: cached kernel, one call per group),
    ``torchaudio.functional.resample`` per factor group (kernel rebuilt per call), ``Speed`` per row."""
    import types

    import torch

    from mtl_aug.augmentations import SpeedPerturb
    from mtl_aug.masking import pad_to, zero_padding

    import bench_training as bt

    batch = bt.make_rows(batch_size, seconds)
    wave, lengths = batch["wave"], batch["lengths"]
    policy = SpeedPerturb(list(factors), sample_rate)
    functional = SpeedPerturb(list(factors), sample_rate)
    fast = list(functional.speeds)
    del functional.speeds  # a plain list instead of the ModuleList (on_wave only iterates over it)
    functional.speeds = [_FunctionalSpeed(s) for s in fast]
    per_row = SpeedPerturb(list(factors), sample_rate)

    def on_wave_per_row(self, wave, lengths, generator):
        which = torch.randint(len(self.speeds), (wave.size(0),), generator=generator)
        outs = [self.speeds[int(which[r])](wave[r:r + 1], lengths[r:r + 1]) for r in range(wave.size(0))]
        t = max(w.size(1) for w, _ in outs)
        out = torch.cat([pad_to(w, t) for w, _ in outs])
        out_len = torch.cat([l.clamp(max=t) for _, l in outs])
        return zero_padding(out, out_len), out_len

    per_row.on_wave = types.MethodType(on_wave_per_row, per_row)
    fns = {name: (lambda m=m: m.on_wave(wave, lengths, torch.Generator().manual_seed(0)))
           for name, m in (("Speed_per_factor_group", policy), ("functional_resample_per_group", functional),
                           ("Speed_per_row", per_row))}
    with torch.no_grad():
        ref = fns["Speed_per_factor_group"]()
        same = all(torch.allclose(ref[0], fns[k]()[0], atol=1e-5) and torch.equal(ref[1], fns[k]()[1])
                   for k in ("functional_resample_per_group", "Speed_per_row"))
    with torch.no_grad(), common.one_thread():
        res = common.compare(fns, "Speed_per_factor_group", rounds, warmup)
    audio = batch_size * seconds
    return {"batch_size": batch_size, "seconds": seconds, "factors": list(factors), "threads": 1,
            "same_output": bool(same),
            "variants": {k: {**v, "x_realtime": round(audio / v["median_s"], 1)} for k, v in res.items()}}
