"""load_model: device mapping, eval mode, and one-line errors for unusable checkpoints."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf
import torch

from mtl_aug.checkpoints import (
    CheckpointError,
    expected_format,
    load_model,
    resolve_device,
    save_untrained_checkpoint,
)
from mtl_aug.tasks import MTLAugModule

TINY = dict(n_mels=16, enc_channels=[4, 4], enc_time_pool=[1, 2], enc_freq_pool=[2, 2], enc_out_dim=16,
            lstm_hidden=8, attn_dim=8, embed_dim=8, dec_hidden=16, aug_hidden=8)


@pytest.fixture(scope="module")
def tiny_ckpt(tmp_path_factory):
    return save_untrained_checkpoint(tmp_path_factory.mktemp("ckpt") / "tiny.ckpt", class_names=["a", "b", "c"], **TINY)


def _assert_one_line(err: pytest.ExceptionInfo, path, *words: str) -> None:
    msg = str(err.value)
    assert "\n" not in msg and msg.startswith(str(path))
    for w in words:
        assert w in msg.lower(), msg


def test_loads_on_cpu_in_eval_mode(tiny_ckpt):
    model = load_model(tiny_ckpt, "cpu")
    assert isinstance(model, MTLAugModule) and not model.training
    assert next(model.parameters()).device.type == "cpu"
    assert list(model.hparams.class_names) == ["a", "b", "c"]
    assert model.checkpoint_format == MTLAugModule.CHECKPOINT_FORMAT == expected_format()
    assert load_model(tiny_ckpt, "auto") is not None


def test_missing_file(tmp_path):
    path = tmp_path / "nope.ckpt"
    with pytest.raises(CheckpointError) as err:
        load_model(path)
    _assert_one_line(err, path, "not found")


@pytest.mark.parametrize("kind", ["text", "wav", "empty", "plain_dict"])
def test_not_a_checkpoint(tmp_path, kind):
    path = tmp_path / f"{kind}.ckpt"
    if kind == "text":
        path.write_text("this is not a model\n")
    elif kind == "wav":
        sf.write(path, np.zeros(1600, dtype=np.float32), 16000, format="WAV")
    elif kind == "empty":
        path.write_bytes(b"")
    else:
        torch.save({"weights": torch.zeros(3)}, path)
    with pytest.raises(CheckpointError) as err:
        load_model(path)
    _assert_one_line(err, path, "checkpoint")


@pytest.mark.parametrize("fmt", [None, 999])
def test_incompatible_or_missing_format(tiny_ckpt, tmp_path, fmt):
    ckpt = torch.load(tiny_ckpt, map_location="cpu", weights_only=True)
    if fmt is None:
        del ckpt["mtl_aug_format"]
    else:
        ckpt["mtl_aug_format"] = fmt
    path = tmp_path / "old.ckpt"
    torch.save(ckpt, path)
    with pytest.raises(CheckpointError) as err:
        load_model(path)
    _assert_one_line(err, path, "mtl_aug_format", "missing" if fmt is None else "incompatible")


def test_speaker_normalised_checkpoint_is_refused(tiny_ckpt, tmp_path):
    """cv/cross --normalize speaker checkpoints need per-speaker statistics that predict/export lack."""
    ckpt = torch.load(tiny_ckpt, map_location="cpu", weights_only=True)
    ckpt["speaker_norm"] = {"mode": "speaker", "stats": {"emodb:03": [[0.0] * 16, [1.0] * 16]}}
    path = tmp_path / "speakernorm.ckpt"
    torch.save(ckpt, path)
    with pytest.raises(CheckpointError) as err:
        load_model(path)
    _assert_one_line(err, path, "speaker-level", "make pretrained")
    # noise/adversarial load cv checkpoints through the same check
    from mtl_aug.checkpoints import load_for_evaluation

    with pytest.raises(CheckpointError) as err:
        load_for_evaluation(path, group_norm=False)
    _assert_one_line(err, path, "speaker-level", "predict and export")


def test_module_check_is_also_turned_into_one_line(tiny_ckpt, tmp_path, monkeypatch):
    """Even if the pre-check is bypassed, the module's own on_load_checkpoint error comes out as one line."""
    import mtl_aug.checkpoints as loading

    ckpt = torch.load(tiny_ckpt, map_location="cpu", weights_only=True)
    ckpt["mtl_aug_format"] = 999
    path = tmp_path / "bad.ckpt"
    torch.save(ckpt, path)
    monkeypatch.setattr(loading, "check_format", lambda *a: None)
    with pytest.raises(CheckpointError) as err:
        load_model(path)
    _assert_one_line(err, path, "incompatible")


def test_cuda_request_without_gpu_is_an_error():
    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    with pytest.raises(RuntimeError, match="CUDA is not available"):
        resolve_device("cuda")
    assert resolve_device("auto").type == "cpu"


def test_predict_cli_reports_a_bad_checkpoint_in_one_line(tmp_path, capsys, make_audio):
    from mtl_aug.inference.predict import main

    wav = make_audio(tmp_path / "x.wav")
    bad = tmp_path / "bad.ckpt"
    bad.write_text("nope")
    assert main([str(wav), "--ckpt", str(bad), "--no-progress"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and str(bad) in err[0] and "not a PyTorch checkpoint" in err[0]


def test_checkpoint_saved_on_gpu_loads_on_cpu(tiny_ckpt, tmp_path):
    """Tensors tagged 'cuda:0' in the file (as written on a GPU machine) load on a CPU-only machine."""
    if torch.cuda.is_available():
        pytest.skip("needs a machine without CUDA to prove the mapping")
    import torch.serialization as ser

    ckpt = torch.load(tiny_ckpt, map_location="cpu", weights_only=True)
    entry = (1, lambda obj: "cuda:0" if getattr(obj, "device", None) is not None and obj.device.type == "cpu" else None,
             lambda obj, location: None)
    ser._package_registry.append(entry)  # fake the GPU location tag while saving
    ser._package_registry.sort(key=lambda e: e[0])
    try:
        torch.save(ckpt, tmp_path / "gpu.ckpt")
    finally:
        ser._package_registry.remove(entry)
    with pytest.raises(RuntimeError, match="CUDA"):
        torch.load(tmp_path / "gpu.ckpt", weights_only=True)  # the file really says cuda
    model = load_model(tmp_path / "gpu.ckpt", "cpu")
    assert next(model.parameters()).device.type == "cpu"
