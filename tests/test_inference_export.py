"""Export round trips: TorchScript and ONNX match the PyTorch model (max |dp| < 1e-4) at any length."""

from __future__ import annotations

import lightning as L
import numpy as np
import pytest
import torch

from mtl_aug.features import LogMelFrontEnd
from mtl_aug.inference.export import (
    PARITY_TOLERANCE,
    example_inputs,
    export_onnx,
    export_torchscript,
    main,
    read_onnx_metadata,
    read_torchscript,
    reference_probs,
    run_exported,
)
from mtl_aug.checkpoints import load_model
from mtl_aug.inference.dft import DFTMelSpectrogram
from mtl_aug.tasks import MTLAugModule

CLASSES = ["anger", "joy", "neutral", "sadness", "fear"]
TINY = dict(n_mels=24, enc_channels=[4, 8], enc_time_pool=[2, 1], enc_freq_pool=[2, 2], enc_out_dim=16,
            lstm_hidden=8, lstm_layers=2, attn_dim=8, embed_dim=8, dec_hidden=16, aug_hidden=8)
# two batches whose shapes differ from each other and from the tracing example (1.0 s + 0.6 s)
BATCHES = [(2.7, 0.45), (5.3,)]


@pytest.fixture(scope="module", params=["group", "batch", "voice_tracks", "voice_fusion"])
def model(tmp_path_factory, request):
    from mtl_aug.tasks import legacy

    torch.manual_seed(0)
    cfg = legacy.nested_from_flat(dict(class_names=CLASSES, enc_norm="batch" if request.param == "batch" else "group",
                                       enc_deltas=True, **TINY))  # Δ/ΔΔ input channels, as the default recipe
    cfg["front_end"]["init_args"]["voice_tracks"] = request.param == "voice_tracks"
    if request.param == "voice_fusion":  # the voice statistics are computed inside the exported graph
        cfg["functionals"] = "voice"
    m = MTLAugModule.from_config(cfg)
    with torch.no_grad():  # sharpen the untrained classifier so probabilities are far from uniform
        m.emotion_head.classifier.weight.mul_(200.0)
        for bn in (x for x in m.modules() if isinstance(x, torch.nn.BatchNorm2d)):  # non-trivial running statistics
            bn.running_mean.uniform_(-0.5, 0.5)
            bn.running_var.uniform_(0.5, 2.0)
    trainer = L.Trainer(accelerator="cpu", logger=False, enable_checkpointing=False, enable_progress_bar=False,
                        enable_model_summary=False)
    trainer.strategy.connect(m)
    path = tmp_path_factory.mktemp("ckpt") / "tiny.ckpt"
    trainer.save_checkpoint(path)
    return load_model(path, "cpu")


def _max_diff(model, path, fmt) -> float:
    worst = 0.0
    for seconds in BATCHES:
        wave, lengths = example_inputs(16000, seconds, seed=7)
        ref = reference_probs(model, wave, lengths).numpy()
        got = run_exported(path, fmt, wave, lengths)
        assert got.shape == ref.shape == (len(seconds), len(CLASSES))
        assert np.allclose(got.sum(-1), 1.0, atol=1e-5)
        worst = max(worst, float(np.abs(got - ref).max()))
    return worst


def test_reference_is_not_trivially_uniform(model):
    wave, lengths = example_inputs(16000, BATCHES[0], seed=7)
    assert reference_probs(model, wave, lengths).max() > 0.5


def test_torchscript_round_trip(model, tmp_path):
    path = export_torchscript(model, tmp_path / "model.pt", "tiny.ckpt")
    module, meta = read_torchscript(path)
    assert meta["class_names"] == CLASSES and meta["sample_rate"] == 16000
    diff = _max_diff(model, path, "torchscript")
    print(f"TorchScript parity: max |dp| = {diff:.2e}")
    assert diff < PARITY_TOLERANCE


def test_onnx_round_trip_with_dynamic_axes(model, tmp_path):
    import onnx

    path = export_onnx(model, tmp_path / "model.onnx", "tiny.ckpt")
    meta = read_onnx_metadata(path)
    assert meta["class_names"] == CLASSES and meta["sample_rate"] == 16000
    graph = onnx.load(str(path)).graph
    wave_dims = [d.dim_param or d.dim_value for d in graph.input[0].type.tensor_type.shape.dim]
    assert [i.name for i in graph.input] == ["wave", "lengths"] and all(isinstance(d, str) for d in wave_dims)
    diff = _max_diff(model, path, "onnx")
    print(f"ONNX parity: max |dp| = {diff:.2e}")
    assert diff < PARITY_TOLERANCE


def test_export_command_checks_parity(model, tmp_path, capsys):
    ckpt = model.checkpoint_path
    assert main(["--ckpt", ckpt, "--out", str(tmp_path / "m.onnx")]) == 0
    assert main(["--ckpt", ckpt, "--format", "torchscript", "--out", str(tmp_path / "m.pt")]) == 0
    out = capsys.readouterr().out
    assert out.count("OK") == 2 and "anger, joy" in out
    assert main(["--ckpt", str(tmp_path / "missing.ckpt"), "--out", str(tmp_path / "x.pt")]) == 1


def test_dft_mel_matches_torchaudio_stft():
    fe = LogMelFrontEnd()
    wave, lengths = example_inputs(16000, (1.3, 0.2), seed=3)
    ref = fe.mel(wave)
    got = DFTMelSpectrogram(fe.mel)(wave)
    assert got.shape == ref.shape
    assert torch.allclose(got, ref, rtol=1e-4, atol=1e-6 * float(ref.max()))
    feats_ref, fl_ref = fe(wave, lengths)
    fe.mel = DFTMelSpectrogram(fe.mel)
    feats, fl = fe(wave, lengths)
    assert torch.equal(fl, fl_ref) and float((feats - feats_ref).abs().max()) < 1e-3
