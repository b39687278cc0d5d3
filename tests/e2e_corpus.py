"""The tiny synthetic corpus the end-to-end command tests share (test_eval_e2e, test_own_corpus_e2e): 4 speakers x
4 emotions x 2 utterances of ~1 s, a few unlabelled files, background noise files, their manifests, and the flags of
a small encoder."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

TINY_MODEL = ["--model.enc_channels=[4,8,8]", "--model.enc_out_dim=32", "--model.lstm_hidden=16",
              "--model.attn_dim=16", "--model.embed_dim=16", "--model.dec_hidden=32", "--model.aug_hidden=16"]


def synthetic_corpus_with_noise(tmp: Path, mp: pytest.MonkeyPatch, noise_names: tuple[str, ...],
                                corpora: tuple[str, ...]) -> tuple[Path, Path]:
    """Generate the corpus and noise files under ``tmp``, point SYNTHETIC_ROOT / NOISE_ROOT at them (through ``mp``)
    and prepare ``corpora``' manifests; returns (synthetic root, manifest dir)."""
    from mtl_aug.data import prepare, synthetic

    synth, manifests, noise_root = tmp / "synth", tmp / "manifests", tmp / "noise"
    assert synthetic.main(["--root", str(synth), "--n-speakers", "4", "--utts-per-emotion", "2",
                           "--n-unlabelled", "4", "--min-seconds", "1.0", "--max-seconds", "1.2"]) == 0
    (noise_root / "_background_noise_").mkdir(parents=True)
    rng = np.random.default_rng(0)
    for name in noise_names:
        sf.write(noise_root / "_background_noise_" / f"{name}.wav",
                 (0.1 * rng.standard_normal(16000 * 3)).astype("float32"), 16000)
    mp.setenv("SYNTHETIC_ROOT", str(synth))
    mp.setenv("NOISE_ROOT", str(noise_root))
    for corpus in corpora:
        assert prepare.main([corpus, "--out-dir", str(manifests), "--no-progress"]) == 0
    return synth, manifests
