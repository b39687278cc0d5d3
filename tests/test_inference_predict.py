"""`python -m mtl_aug predict`: any audio (rate, channels, format, length), windows, JSON/CSV, bad files."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf
import torch

from mtl_aug.checkpoints import load_model, save_untrained_checkpoint
from mtl_aug.inference.predict import csv_columns, expand_inputs, main, predict_waveform

CLASSES = ["angry", "happy", "neutral", "sad"]


@pytest.fixture(autouse=True)
def _restore_threads():
    n = torch.get_num_threads()  # `--threads` sets torch's global thread count
    yield
    torch.set_num_threads(n)


@pytest.fixture(scope="module")
def demo_ckpt(tmp_path_factory):
    """A checkpoint with the demo configuration's model sizes (MTLAugModule defaults), untrained."""
    return save_untrained_checkpoint(tmp_path_factory.mktemp("ckpt") / "demo.ckpt", class_names=CLASSES)


def _noise(seconds: float, sr: int, channels: int = 1, seed: int = 0) -> np.ndarray:
    x = 0.1 * np.random.default_rng(seed).standard_normal((int(seconds * sr), channels))
    return x.astype(np.float32)


@pytest.fixture
def mixed_folder(tmp_path):
    d = tmp_path / "recordings"
    (d / "sub").mkdir(parents=True)
    sf.write(d / "stereo48k.wav", _noise(3.0, 48000, channels=2), 48000)
    sf.write(d / "sub" / "mono16k.flac", _noise(2.0, 16000, seed=1), 16000)
    sf.write(d / "long60.wav", _noise(60.0, 16000, seed=2), 16000)
    (d / "corrupt.wav").write_bytes(b"RIFF\x10\x00\x00\x00WAVEfmt " + os.urandom(64))
    (d / "notes.txt").write_text("not audio, not picked up from a folder")
    return d


def test_predict_folder_with_mixed_files(demo_ckpt, mixed_folder, tmp_path, capsys):
    out_json, out_csv = tmp_path / "out" / "pred.json", tmp_path / "out" / "pred.csv"
    rc = main([str(mixed_folder), "--ckpt", str(demo_ckpt), "--json", str(out_json), "--csv", str(out_csv),
               "--device", "cpu", "--threads", "1", "--batch-size", "8"])
    captured = capsys.readouterr()
    assert rc == 1  # one file failed

    payload = json.loads(out_json.read_text())
    assert payload["class_names"] == CLASSES and payload["aggregation"] == "mean of window probabilities"
    assert len(payload["results"]) == 3
    assert len(payload["failures"]) == 1
    failure = payload["failures"][0]
    assert failure["file"].endswith("corrupt.wav") and failure["reason"]
    assert "corrupt.wav" in captured.err and failure["reason"] in captured.err

    by_name = {os.path.basename(r["file"]): r for r in payload["results"]}
    assert set(by_name) == {"stereo48k.wav", "mono16k.flac", "long60.wav"}
    for r in payload["results"]:
        assert r["emotion"] in CLASSES
        assert abs(sum(r["probabilities"].values()) - 1.0) < 1e-5
        assert r["emotion"] == max(r["probabilities"], key=r["probabilities"].get)
        assert r["n_windows"] == len(r["windows"])
    assert by_name["stereo48k.wav"]["n_windows"] == 1 and abs(by_name["stereo48k.wav"]["duration"] - 3.0) < 1e-3
    assert by_name["mono16k.flac"]["n_windows"] == 1

    long = by_name["long60.wav"]
    assert long["n_windows"] >= 2 and long["n_windows"] == 29
    assert long["windows"][0]["start"] == 0.0 and long["windows"][-1]["end"] == pytest.approx(60.0)
    for w in long["windows"]:
        assert w["end"] - w["start"] == pytest.approx(4.0)
        assert abs(sum(w["probabilities"].values()) - 1.0) < 1e-5
    mean = np.mean([[w["probabilities"][c] for c in CLASSES] for w in long["windows"]], axis=0)
    assert np.allclose(mean, [long["probabilities"][c] for c in CLASSES], atol=1e-6)

    with out_csv.open() as fh:
        rows = list(csv.DictReader(fh))
    assert list(rows[0].keys()) == csv_columns(CLASSES)
    assert list(rows[0].keys())[:2] == ["file", "emotion"] and "n_windows" in rows[0]
    assert len(rows) == 3
    row = next(r for r in rows if r["file"].endswith("long60.wav"))
    assert int(row["n_windows"]) == 29
    assert abs(sum(float(row[f"prob_{c}"]) for c in CLASSES) - 1.0) < 1e-4
    assert "long60.wav" in captured.out  # the terminal table


def test_batched_windows_equal_single_window_runs(demo_ckpt):
    model = load_model(demo_ckpt, "cpu")
    wave = torch.from_numpy(_noise(11.0, 16000, seed=3)[:, 0])
    res = predict_waveform(model, wave, window=4.0, hop=2.0, batch_size=3)
    assert res["n_windows"] == 5 and res["windows"][-1]["start"] == pytest.approx(7.0)
    for w in (res["windows"][1], res["windows"][-1]):
        s, e = int(w["start"] * 16000), int(w["end"] * 16000)
        with torch.no_grad():
            p = torch.softmax(model.emotion_logits(wave[None, s:e], torch.tensor([e - s])), -1)[0]
        assert np.allclose([w["probabilities"][c] for c in CLASSES], p.numpy(), atol=1e-5)
    short = predict_waveform(model, wave[:8000], window=4.0, hop=2.0)
    assert short["n_windows"] == 1 and short["windows"][0]["end"] == pytest.approx(0.5)


def test_inputs_files_folders_globs_and_missing(mixed_folder, tmp_path):
    files, failures = expand_inputs([str(mixed_folder)])
    names = sorted(p.name for p in files)
    assert names == ["corrupt.wav", "long60.wav", "mono16k.flac", "stereo48k.wav"] and not failures
    files, failures = expand_inputs([str(mixed_folder / "**" / "*.flac"), str(mixed_folder / "notes.txt"),
                                     str(mixed_folder / "stereo48k.wav"), str(mixed_folder / "stereo48k.wav"),
                                     str(tmp_path / "missing.wav"), str(tmp_path / "*.nothing")])
    assert [p.name for p in files] == ["mono16k.flac", "notes.txt", "stereo48k.wav"]  # explicit files always tried
    assert [f["reason"] for f in failures] == ["file not found", "no file matches this pattern"]


def test_single_good_file_exits_zero_through_the_dispatcher(demo_ckpt, tmp_path):
    wav = tmp_path / "one.wav"
    sf.write(wav, _noise(1.5, 22050, channels=2), 22050)
    proc = subprocess.run([sys.executable, "-m", "mtl_aug", "predict", str(wav), "--ckpt", str(demo_ckpt),
                           "--device", "cpu", "--threads", "1", "--csv", str(tmp_path / "o.csv")],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "one.wav" in proc.stdout and "0 failed" in proc.stderr
    assert (tmp_path / "o.csv").read_text().count("\n") == 2


def test_several_checkpoints_predict_their_mean_probabilities(demo_ckpt, tmp_path, capsys):
    from mtl_aug.checkpoints import CheckpointError
    from mtl_aug.inference.loading import SeedEnsemble, load_models

    other = save_untrained_checkpoint(tmp_path / "seed1.ckpt", seed=1, class_names=CLASSES)
    wave = torch.from_numpy(_noise(6.0, 16000, seed=4)[:, 0])
    singles = [predict_waveform(load_model(c, "cpu"), wave) for c in (demo_ckpt, other)]
    ens = load_models([demo_ckpt, other], "cpu")
    assert isinstance(ens, SeedEnsemble)
    both = predict_waveform(ens, wave)
    for c in CLASSES:  # per window, then per file: the mean of the two models' probabilities
        assert both["probabilities"][c] == pytest.approx(np.mean([s["probabilities"][c] for s in singles]), abs=1e-5)
        assert both["windows"][1]["probabilities"][c] == pytest.approx(
            np.mean([s["windows"][1]["probabilities"][c] for s in singles]), abs=1e-5)
    assert singles[0]["probabilities"] != pytest.approx(singles[1]["probabilities"])  # two different models
    wav = tmp_path / "one.wav"
    sf.write(wav, wave.numpy(), 16000)
    assert main([str(wav), "--ckpt", str(demo_ckpt), "--ckpt", str(other), "--device", "cpu", "--no-progress",
                 "--json", str(tmp_path / "o.json")]) == 0
    assert json.loads((tmp_path / "o.json").read_text())["checkpoint"] == [str(demo_ckpt), str(other)]
    odd = save_untrained_checkpoint(tmp_path / "odd.ckpt", class_names=["a", "b", "c", "d"])
    with pytest.raises(CheckpointError, match=r"odd.ckpt: classes \['a', 'b', 'c', 'd'\] differ from .*not one ensemble"):
        load_models([demo_ckpt, odd], "cpu")


def _svm_file(path, classes=CLASSES, normalize="utterance", sample_rate=16000):
    """A per-utterance eGeMAPS + SVM model file, as cv or `pretrained --system egemaps_svm` saves it (fitted on
    12 noise clips of 4 loudness levels, one class each)."""
    from mtl_aug.baseline.run import BaselineConfig, save
    from mtl_aug.baseline.svm import FunctionalsSVM
    from mtl_aug.data.functionals import FunctionalsExtractor

    ext = FunctionalsExtractor("egemaps")
    waves = [_noise(1.0, 16000, seed=s)[:, 0] * (0.2 + 0.6 * (s % 4)) for s in range(12)]
    x = np.stack([ext(w, 16000) for w in waves])
    y = np.array([s % 4 for s in range(12)])
    svm = FunctionalsSVM(4, kernels=["linear"], cs=[1.0]).fit(x, y, [f"spk{s // 4}" for s in range(12)])
    cfg = BaselineConfig(feature_set="egemaps", kernels=["linear"], C=[1.0], normalize=normalize)
    return save(path, svm, cfg, {"sample_rate": sample_rate, "corpus": "test"}, list(classes))


def test_svm_late_fusion_is_the_mean_of_network_and_svm_file_probabilities(demo_ckpt, tmp_path, capsys):
    from mtl_aug.baseline.run import load_baseline

    svm_path = _svm_file(tmp_path / "svm.pkl")
    wave = torch.from_numpy(_noise(6.0, 16000, seed=4)[:, 0])
    model, svm = load_model(demo_ckpt, "cpu"), load_baseline(svm_path)
    alone = predict_waveform(model, wave)
    fused = predict_waveform(model, wave, svms=[svm], what="clip")
    svm_probs = svm.utterance_probabilities(wave.numpy(), 16000)
    assert abs(svm_probs.sum() - 1) < 1e-6 and fused["windows"] == alone["windows"]  # the timeline: the network's
    for i, c in enumerate(CLASSES):
        assert fused["probabilities"][c] == pytest.approx((alone["probabilities"][c] + svm_probs[i]) / 2, abs=1e-6)
        assert fused["components"]["network"][c] == pytest.approx(alone["probabilities"][c], abs=1e-6)
        assert fused["components"][str(svm_path)][c] == pytest.approx(svm_probs[i], abs=1e-6)
    wav = tmp_path / "one.wav"
    sf.write(wav, wave.numpy(), 16000)
    out = tmp_path / "o.json"
    assert main([str(wav), "--ckpt", str(demo_ckpt), "--svm", str(svm_path), "--device", "cpu", "--no-progress",
                 "--json", str(out)]) == 0
    payload = json.loads(out.read_text())
    assert payload["svm"] == [str(svm_path)] and "SVM" in payload["aggregation"]
    assert payload["results"][0]["probabilities"] == pytest.approx(fused["probabilities"], abs=1e-5)
    # models that cannot be fused are refused before any file is read, naming the file and the reason
    for bad, reason in ((_svm_file(tmp_path / "spk.pkl", normalize="speaker"), "speaker-normalised SVM"),
                        (_svm_file(tmp_path / "abc.pkl", classes=["a", "b", "c", "d"]), "classes"),
                        (_svm_file(tmp_path / "8k.pkl", sample_rate=8000), "8000 Hz"),
                        (tmp_path / "missing.pkl", "not found")):
        capsys.readouterr()
        assert main([str(wav), "--ckpt", str(demo_ckpt), "--svm", str(bad), "--device", "cpu"]) == 1
        err = capsys.readouterr().err
        assert f"predict: error: {bad}:" in err and reason in err, err
