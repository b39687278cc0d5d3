"""The classical baseline (openSMILE functionals + SVM): pure SVM helpers, the feature cache, bad audio, and the
evaluation commands end to end on a tiny synthetic corpus (cv with a cache hit on the rerun, speaker
normalisation, noise, cross, adversarial refusing it)."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
import soundfile as sf
from sklearn.metrics import balanced_accuracy_score
from sklearn.model_selection import LeaveOneGroupOut, cross_val_predict
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC

from mtl_aug.baseline import svm
from mtl_aug.data.functionals import FunctionalsCache, FunctionalsExtractor
from mtl_aug.baseline.run import BaselineConfig, parse_args
from mtl_aug.recipes import is_baseline, recipe_args
from mtl_aug.data.audio import AudioError
from mtl_aug.data.cache import WaveformCache
from mtl_aug.evaluation import adversarial, cross, cv, noise, runs


def _toy(seed: int = 0, n_spk: int = 4, per: int = 12, d: int = 6):
    rng = np.random.default_rng(seed)
    y = np.tile(np.arange(3), n_spk * per // 3)
    groups = [f"s{i // per}" for i in range(n_spk * per)]
    x = rng.standard_normal((len(y), d)) + 1.5 * np.eye(3, d)[y] + np.repeat(rng.standard_normal((n_spk, d)), per, 0)
    return x, y, groups


def test_search_matches_sklearn_leave_one_speaker_out():
    """Same inner UAR as sklearn's own pipeline; predictions = argmax of the ovr decision values (break_ties)."""
    x, y, groups = _toy()
    res = svm.search(x, y, groups, 3, kernels=("linear", "rbf"), cs=(0.01, 1.0))
    for point in res.grid:
        pipe = make_pipeline(StandardScaler(), SVC(kernel=point["kernel"], C=point["C"], gamma="scale",
                                                   class_weight="balanced", break_ties=True))
        pred = cross_val_predict(pipe, x, y, groups=groups, cv=LeaveOneGroupOut())
        assert point["uar"] == pytest.approx(balanced_accuracy_score(y, pred)), point
    assert res.score == max(p["uar"] for p in res.grid)


def test_inner_splits_hold_out_whole_speakers():
    groups = ["a", "a", "b", "c", "c", "d"]
    for k in (None, 2):
        splits = svm.inner_splits(groups, k)
        held = np.concatenate(splits)
        assert sorted(held.tolist()) == list(range(len(groups)))  # every row held out exactly once
        for s in splits:
            inside = {groups[i] for i in s}
            assert not inside & {groups[i] for i in set(range(len(groups))) - set(s.tolist())}


def test_group_normalize_zero_mean_unit_std_per_group():
    x, _, groups = _toy()
    z = svm.group_normalize(x, groups, svm.group_stats(x, groups))
    for g in set(groups):
        rows = z[[i for i, h in enumerate(groups) if h == g]]
        assert np.allclose(rows.mean(0), 0, atol=1e-6) and np.allclose(rows.std(0), 1, atol=1e-4)


def test_predictions_are_the_argmax_of_the_decision_scores():
    x, y, groups = _toy(1)
    model = svm.FunctionalsSVM(3, cs=(0.1, 1.0)).fit(x, y, groups)
    scores = model.decision_scores(x)
    assert scores.shape == (len(y), 3) and (model.predict(x) == scores.argmax(1)).all()
    assert np.allclose(svm.softmax(scores).sum(1), 1.0)
    with pytest.raises(ValueError, match=r"no example of class\(es\) \[2\]"):
        svm.FunctionalsSVM(3).fit(x[y < 2], y[y < 2], [g for g, t in zip(groups, y) if t < 2])


def test_config_rejects_unknown_settings():
    with pytest.raises(ValueError, match="feature_set"):
        BaselineConfig(feature_set="mfcc")
    with pytest.raises(ValueError, match="normalize"):
        BaselineConfig(normalize="batch")
    with pytest.raises(ValueError, match="kernels"):
        BaselineConfig(kernels=["poly"])


def test_system_yaml_declares_the_family_and_skips_the_neural_base_config():
    args = recipe_args("emodb", "compare_svm")
    assert is_baseline(args) and not any(a.endswith("base.yaml") for a in args)
    assert not is_baseline(recipe_args("emodb", "mtl_aug"))
    data, cfg, seed = parse_args([*args, "--trainer.max_epochs=3", "--model.C=[0.1]", "--seed_everything=4"])
    assert cfg.feature_set == "compare" and cfg.C == [0.1] and seed == 4 and data["corpus"] == "emodb"


def test_extractor_and_cache(tmp_path):
    sr = 16000
    t = np.arange(sr) / sr
    path = tmp_path / "a.wav"
    sf.write(path, (0.3 * np.sin(2 * np.pi * 180 * t) * (1 + 0.5 * np.sin(2 * np.pi * 3 * t))).astype("float32"), sr)
    ex = FunctionalsExtractor("egemaps")
    cache = FunctionalsCache(ex, WaveformCache(tmp_path / "waves", sr), tmp_path / "functionals")
    first = cache.get(path)
    assert first.shape == (88,) and np.isfinite(first).all() and (cache.hits, cache.misses) == (0, 1)
    again = FunctionalsCache(ex, WaveformCache(tmp_path / "waves", sr), tmp_path / "functionals")
    assert np.array_equal(again.get(path), first) and (again.hits, again.misses) == (1, 0)
    with pytest.raises(ValueError, match="x.wav: expected a non-empty mono waveform"):
        ex(np.zeros(0, np.float32), sr, what="x.wav")


def test_unreadable_audio_is_an_error_naming_the_file(tmp_path):
    bad = tmp_path / "broken.wav"
    bad.write_bytes(b"RIFF\x00\x00\x00\x00WAVEjunk")
    cache = FunctionalsCache(FunctionalsExtractor("egemaps"), WaveformCache(tmp_path / "w", 16000), tmp_path / "f")
    with pytest.raises(AudioError, match="broken.wav"):
        cache.get(bad)
    assert not list((tmp_path / "f").rglob("*.npy"))  # nothing cached for it


# -- the evaluation commands on a synthetic corpus -----------------------------------------------------
FOLDS = "F01,M02"


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    from mtl_aug.data import prepare, synthetic

    tmp = tmp_path_factory.mktemp("baseline")
    mp = pytest.MonkeyPatch()
    synth, manifests, noise_root = tmp / "synth", tmp / "manifests", tmp / "noise"
    assert synthetic.main(["--root", str(synth), "--n-speakers", "4", "--utts-per-emotion", "3",
                           "--n-unlabelled", "2", "--min-seconds", "1.0", "--max-seconds", "1.2"]) == 0
    (noise_root / "_background_noise_").mkdir(parents=True)
    rng = np.random.default_rng(0)
    sf.write(noise_root / "_background_noise_" / "running_tap.wav",
             (0.1 * rng.standard_normal(16000 * 3)).astype("float32"), 16000)
    mp.setenv("SYNTHETIC_ROOT", str(synth))
    mp.setenv("NOISE_ROOT", str(noise_root))
    for corpus, root in (("synthetic", synth), ("speech_commands", noise_root)):
        assert prepare.main([corpus, "--root", str(root), "--out-dir", str(manifests), "--no-progress"]) == 0
    extra = ["--", f"--data.cache_dir={tmp / 'cache'}", f"--model.feature_cache_dir={tmp / 'functionals'}",
             "--model.C=[0.01,1.0]"]
    yield {"tmp": tmp, "results": tmp / "results", "extra": extra,
           "common": ["--seeds", "1", "--manifest-dir", str(manifests)]}
    mp.undo()


@pytest.fixture(scope="module")
def cv_done(env):
    out = env["results"] / "synthetic" / "egemaps_svm"
    assert cv.main(["--corpus", "synthetic", "--system", "egemaps_svm", "--folds", FOLDS, "--out", str(out),
                    *env["common"], *env["extra"]]) == 0
    return out


def test_cv_writes_the_neural_systems_outputs(cv_done):
    for name in ("folds.csv", "predictions.csv", "summary.json", "summary.md", "confusion.png"):
        assert (cv_done / name).exists(), name
    preds = list(csv.DictReader(open(cv_done / "predictions.csv")))
    assert len(preds) == 24  # 2 test speakers x 4 emotions x 3 utterances
    s = json.loads((cv_done / "summary.json").read_text())
    assert s["pooled_uar"]["mean"] == pytest.approx(
        balanced_accuracy_score([int(p["label"]) for p in preds], [int(p["pred"]) for p in preds]))
    res = json.loads((cv_done / "runs" / "F01_s0" / runs.RESULT_FILE).read_text())
    b = res["baseline"]
    assert b["feature_set"] == "egemaps" and b["n_features"] == 88 and b["C"] in (0.01, 1.0)
    assert "F01" not in b["fit_speakers"]  # the test speaker is never fitted on, nor in the inner search
    assert res["fold_info"]["n_test"] == 12 and res["best_checkpoint"].endswith("model.pkl")
    assert all(abs(sum(r["probs"]) - 1) < 1e-5 for r in res["predictions"])


def test_voice_svm_is_a_baseline_system_on_the_voice_encoders_statistics(env):
    out = env["results"] / "synthetic" / "voice_svm"
    assert cv.main(["--corpus", "synthetic", "--system", "voice_svm", "--folds", "F01", "--out", str(out),
                    *env["common"], *env["extra"]]) == 0
    b = json.loads((out / "runs" / "F01_s0" / runs.RESULT_FILE).read_text())["baseline"]
    assert b["feature_set"] == "voice" and b["n_features"] == 1792
    assert list((env["tmp"] / "functionals").glob("voice-resemblyzer*"))


def test_second_run_reads_every_feature_from_the_cache(env, cv_done):
    assert cv.main(["--corpus", "synthetic", "--system", "egemaps_svm", "--folds", "F01", "--out",
                    str(env["tmp"] / "again"), *env["common"], *env["extra"]]) == 0
    res = json.loads((env["tmp"] / "again" / "runs" / "F01_s0" / runs.RESULT_FILE).read_text())
    first = json.loads((cv_done / "runs" / "F01_s0" / runs.RESULT_FILE).read_text())
    assert res["baseline"]["feature_cache"]["misses"] == 0 and res["baseline"]["feature_cache"]["hits"] == 48  # train + val + test
    assert res["predictions"] == first["predictions"]  # deterministic: same features, same model


def test_speaker_normalisation_changes_the_features_not_the_protocol(env, cv_done):
    out = runs.normalized_out(env["results"] / "synthetic" / "egemaps_svm", "speaker")
    assert cv.main(["--corpus", "synthetic", "--system", "egemaps_svm", "--folds", "F01", "--normalize", "speaker",
                    "--out", str(out), *env["common"], *env["extra"]]) == 0
    s = json.loads((out / "summary.json").read_text())
    assert s["normalize"] == "speaker"
    res = json.loads((out / "runs" / "F01_s0" / runs.RESULT_FILE).read_text())
    assert res["baseline"]["normalize"] == "speaker"


def test_noise_reuses_the_fitted_models(env, cv_done):
    before = list(runs.EXECUTED)
    assert noise.main(["--corpus", "synthetic", "--system", "egemaps_svm", "--folds", FOLDS, "--snrs", "20,0",
                       "--results-dir", str(env["results"] / "synthetic"), *env["common"], *env["extra"]]) == 0
    assert not [n for n in runs.EXECUTED[len(before):] if ":" not in n]  # nothing refitted
    res = json.loads((cv_done / "noise" / "runs" / "F01_s0" / runs.RESULT_FILE).read_text())
    assert set(res["conditions"]) == {"clean", "20 dB", "0 dB"} and res["clean_matches_cv"] is True
    assert "| egemaps_svm |" in (env["results"] / "synthetic" / "noise.md").read_text()


def test_cross_corpus(env):
    out = env["results"] / "cross" / "synthetic_to_synthetic" / "egemaps_svm"
    assert cross.main(["--train", "synthetic", "--test", "synthetic", "--system", "egemaps_svm", "--out", str(out),
                       *env["common"], *env["extra"]]) == 0
    res = json.loads((out / "runs" / "all_s0" / runs.RESULT_FILE).read_text())
    assert res["fold_info"]["n_test"] == 48 and (out / "summary.json").exists()


def test_adversarial_refuses_a_baseline(env, cv_done):
    with pytest.raises(SystemExit, match="no gradient"):
        adversarial.main(["--corpus", "synthetic", "--system", "egemaps_svm", "--results-dir",
                          str(env["results"] / "synthetic"), *env["common"]])
