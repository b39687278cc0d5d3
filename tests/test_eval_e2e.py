"""End-to-end evaluation commands on a tiny synthetic corpus: cv (with resume after an interruption),
noise (reusing the cv checkpoints), adversarial, cross-corpus with speaker normalisation, paper tables.

Everything is tiny: 4 speakers x 4 emotions x 2 utterances, a small encoder, 1 epoch of 2 batches,
1 seed, 2 folds.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from sklearn.metrics import balanced_accuracy_score

from e2e_corpus import TINY_MODEL, synthetic_corpus_with_noise
from mtl_aug.evaluation import adversarial, cross, cv, noise, paper, runs
from mtl_aug.provenance import machine

pytestmark = pytest.mark.slow

FOLDS = "F01,M02"


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("eval")
    mp = pytest.MonkeyPatch()
    torch.set_num_threads(1)
    _, manifests = synthetic_corpus_with_noise(tmp, mp, ("running_tap", "doing_the_dishes", "white_noise"),
                                               ("synthetic", "synthetic_unlabelled", "speech_commands"))
    yield {"tmp": tmp, "manifests": str(manifests), "results": tmp / "results",
           "extra": ["--", "--trainer.limit_train_batches=2", f"--data.cache_dir={tmp / 'cache'}", *TINY_MODEL]}
    mp.undo()


def common(env):
    return ["--seeds", "1", "--max-epochs", "1", "--manifest-dir", env["manifests"]]


@pytest.fixture(scope="module")
def cv_done(env):
    """cv interrupted during its second run, then resumed: only the unfinished run is redone."""
    import mtl_aug.training as training

    out = env["results"] / "synthetic" / "mtl_aug"
    argv = ["--corpus", "synthetic", "--system", "mtl_aug", "--folds", FOLDS, "--out", str(out),
            *common(env), *env["extra"]]
    real = training.run_training
    calls = []

    def interrupted(cli, *a, **k):
        calls.append(1)
        if len(calls) == 2:  # killed in the middle of the second run, leaving a partial run directory
            (Path(cli.trainer.default_root_dir) / "partial.ckpt").write_bytes(b"")
            raise KeyboardInterrupt
        return real(cli, *a, **k)

    mp = pytest.MonkeyPatch()
    mp.setattr(training, "run_training", interrupted)
    with pytest.raises(KeyboardInterrupt):
        cv.main(argv)
    mp.undo()
    first = out / "runs" / "F01_s0" / runs.RESULT_FILE
    assert first.exists() and not (out / "runs" / "M02_s0" / runs.RESULT_FILE).exists()
    assert (out / "runs" / "M02_s0" / "partial.ckpt").exists()  # the killed run's leftovers
    mtime = first.stat().st_mtime_ns
    executed_before = len(runs.EXECUTED)

    assert cv.main(argv) == 0
    assert runs.EXECUTED[executed_before:] == ["M02_s0"]  # the finished run was not redone
    assert first.stat().st_mtime_ns == mtime
    assert not (out / "runs" / "M02_s0" / "partial.ckpt").exists()  # the leftovers were wiped before the rerun
    return out


def test_cv_dry_run_counts_finished_runs_unless_forced(env, cv_done, capsys):
    argv = ["--corpus", "synthetic", "--system", "mtl_aug", "--folds", FOLDS, "--out", str(cv_done),
            *common(env), "--dry-run", *env["extra"]]
    executed_before = len(runs.EXECUTED)
    assert cv.main(argv) == 0
    assert "configuration OK; 0 of 2 runs to do" in capsys.readouterr().out
    assert cv.main(argv[:-len(env["extra"])] + ["--force", *env["extra"]]) == 0
    out = capsys.readouterr().out
    assert "configuration OK; 2 of 2 runs to do" in out and "finished (redone: --force)" in out
    assert len(runs.EXECUTED) == executed_before  # a dry run trains nothing


def test_cv_end_to_end_with_resume(cv_done):
    out = cv_done
    for name in ("folds.csv", "predictions.csv", "summary.json", "summary.md", "confusion.png"):
        assert (out / name).exists(), name
    folds = list(csv.DictReader(open(out / "folds.csv")))
    assert [r["fold"] for r in folds] == ["F01", "M02"]
    assert set(folds[0]) == set(cv.FOLD_COLUMNS)
    preds = list(csv.DictReader(open(out / "predictions.csv")))
    assert len(preds) == 16  # 2 folds x 8 utterances
    for row in folds:
        ps = [p for p in preds if p["fold"] == row["fold"]]
        assert float(row["uar"]) == pytest.approx(
            balanced_accuracy_score([int(p["label"]) for p in ps], [int(p["pred"]) for p in ps]))
        assert int(row["n_test"]) == len(ps)
    s = json.loads((out / "summary.json").read_text())
    assert s["uar"]["mean"] == pytest.approx(np.mean([float(r["uar"]) for r in folds]))
    assert s["pooled_uar"]["mean"] == pytest.approx(
        balanced_accuracy_score([int(p["label"]) for p in preds], [int(p["pred"]) for p in preds]))
    assert s["command"].startswith("python -m mtl_aug cv --corpus synthetic") and s["git_commit"]
    md = (out / "summary.md").read_text()
    assert "UAR (pooled)" in md and "git commit" in md and "LOSO" in md
    assert s["trained_at"] == [s["git_commit"]] and "runs trained at commit(s)" in md
    # the hardware each run trained on (float rounding depends on it), with torch's kernel level
    assert s["trained_on"] == [machine()] and f"- runs trained on: {machine()}" in md
    assert torch.backends.cpu.get_cpu_capability() in machine()
    assert all(json.loads(p.read_text())["torch_threads"] >= 1 for p in out.glob("runs/*/result.json"))


def test_ensemble_of_one_seed_reproduces_the_cv_run(cv_done, tmp_path):
    """ensemble reads what cv writes; one member's soft vote is that member's own prediction."""
    from mtl_aug.evaluation import ensemble

    s = ensemble.run_ensemble(cv_done, out=tmp_path / "ens")
    member = {r["fold"]: float(r["uar"]) for r in csv.DictReader(open(cv_done / "folds.csv"))}
    ens = {r["fold"]: float(r["uar"]) for r in csv.DictReader(open(tmp_path / "ens" / "folds.csv"))}
    assert ens == pytest.approx(member) and s["members"] == [0]
    assert s["gain_over_members"] == pytest.approx(0.0, abs=1e-6)


def test_noise_reuses_cv_checkpoints(env, cv_done, capsys):
    before = list(runs.EXECUTED)
    argv = ["--corpus", "synthetic", "--system", "mtl_aug", "--folds", FOLDS, "--snrs", "20,0",
            "--results-dir", str(env["results"] / "synthetic"), *common(env), *env["extra"]]
    assert noise.main(argv) == 0
    new = runs.EXECUTED[len(before):]
    assert not [n for n in new if ":" not in n]  # no training: the cv checkpoints were reused
    out = cv_done / "noise"
    res = json.loads((out / "runs" / "F01_s0" / runs.RESULT_FILE).read_text())
    cv_res = json.loads((cv_done / "runs" / "F01_s0" / runs.RESULT_FILE).read_text())
    assert res["checkpoint"] == cv_res["best_checkpoint"] and Path(res["checkpoint"]).exists()
    assert res["noise"] == "speech_commands"
    assert res["conditions"]["clean"]["uar"] == pytest.approx(cv.fold_row(cv_res)["uar"])  # same model, same data
    assert res["clean_matches_cv"] is True
    assert set(res["conditions"]) == {"clean", "20 dB", "0 dB"}
    for name in ("summary.json", "summary.md", "predictions.csv"):
        assert (out / name).exists()
    assert (env["results"] / "synthetic" / "noise.png").exists()
    assert "| mtl_aug | 0 |" in (env["results"] / "synthetic" / "noise.md").read_text()
    # a rerun does nothing new
    n = len(runs.EXECUTED)
    assert noise.main(argv) == 0
    assert len(runs.EXECUTED) == n
    # a dry run says so, and that --force would evaluate again
    dry = argv[:-len(env["extra"])] + ["--dry-run"]
    for flags, state in (([], "cv finished        evaluated\n"), (["--force"], "evaluated (redone: --force)")):
        capsys.readouterr()
        assert noise.main(dry + flags + env["extra"]) == 0
        assert capsys.readouterr().out.count(state) == 2
    assert len(runs.EXECUTED) == n
    # an evaluation older than its cv run is of a model retrained since (cv --force): redone without --force
    res_path = out / "runs" / "F01_s0" / runs.RESULT_FILE
    res["finished"] = "2000-01-01T00:00:00+00:00"
    res_path.write_text(json.dumps(res))
    capsys.readouterr()
    assert noise.main(dry + env["extra"]) == 0
    printed = capsys.readouterr().out
    assert printed.count("evaluated (redone: cv retrained since)") == 1 and printed.count("evaluated\n") == 1
    assert noise.main(argv) == 0
    assert runs.EXECUTED[n:] == ["noise synthetic/mtl_aug:F01_s0"]  # only the stale one
    assert json.loads(res_path.read_text())["finished"] > "2026"


def test_stale_evaluation_is_one_older_than_its_cv_run():
    from mtl_aug.evaluation.robustness import stale

    ev = {"finished": "2026-12-03T10:00:00+00:00"}
    assert not stale(ev, {"finished": "2026-12-03T09:00:00+00:00"})
    assert stale(ev, {"finished": "2026-12-03T11:00:00+01:00"}) is False  # 10:00 UTC: same moment, not later
    assert stale(ev, {"finished": "2026-12-03T10:00:01+00:00"})
    assert stale(ev, None)  # the cv run is gone or unfinished: it will be retrained
    assert not stale({}, {"finished": "2026-12-03T09:00:00+00:00"})  # no timestamp: nothing shows it is stale


def test_noise_names_a_missing_cv_checkpoint(env, cv_done, tmp_path, capsys):
    """A finished cv run whose checkpoint is absent (results committed without checkpoints): one clear error."""
    run_dir = tmp_path / "synthetic" / "mtl_aug" / "runs" / "F01_s0"
    run_dir.mkdir(parents=True)
    res = json.loads((cv_done / "runs" / "F01_s0" / runs.RESULT_FILE).read_text())
    res["best_checkpoint"] = str(run_dir / "gone.ckpt")
    (run_dir / runs.RESULT_FILE).write_text(json.dumps(res))
    with pytest.raises(FileNotFoundError, match="not committed with the results"):
        noise.run_noise("synthetic", "mtl_aug", [0], "F01", (20,), results_dir=tmp_path / "synthetic",
                        manifest_dir=env["manifests"])
    # through the command: that message on one line of stderr, exit 2, no traceback
    argv = ["--corpus", "synthetic", "--system", "mtl_aug", "--folds", "F01", "--snrs", "20", "--seeds", "1",
            "--results-dir", str(tmp_path / "synthetic"), "--manifest-dir", str(env["manifests"])]
    assert noise.main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith("noise: error: cv run ") and "gone.ckpt" in err and "not committed with the results" in err



def test_noise_and_adversarial_on_a_cv_folder(env, capsys):
    """--system <cv folder>: a system trained with other flags (here w_aug) is evaluated under its folder's name,
    next to the other systems; a missing run is trained with the recorded flags, not this command's."""
    folder = env["results"] / "synthetic" / "mtl_aug_w"
    assert cv.main(["--corpus", "synthetic", "--system", "mtl_aug", "--folds", FOLDS, "--out", str(folder),
                    *common(env), *env["extra"], "--model.w_aug=0.5"]) == 0
    gone = folder / "runs" / "M02_s0" / runs.RESULT_FILE
    recorded = json.loads(gone.read_text())["args"]
    gone.unlink()  # as if that run had not finished
    before = len(runs.EXECUTED)
    argv = ["--corpus", "synthetic", "--system", str(folder), "--folds", FOLDS, "--snrs", "20", "--seeds", "1"]
    capsys.readouterr()
    assert noise.main(argv) == 0  # no --manifest-dir, no LightningCLI flags: the folder's own are used
    assert runs.EXECUTED[before:] == ["noise synthetic/mtl_aug_w:F01_s0", "M02_s0", "noise synthetic/mtl_aug_w:M02_s0"]
    assert json.loads(gone.read_text())["args"] == recorded  # retrained exactly as cv trained it
    s = json.loads((folder / "noise" / "summary.json").read_text())
    assert s["title"] == "mtl_aug_w on synthetic under noise" and s["clean_differs_from_cv"] == []
    assert "| mtl_aug_w | 0 |" in (env["results"] / "synthetic" / "noise.md").read_text()
    out = capsys.readouterr().out
    assert "mtl_aug_w on synthetic: clean UAR" in out and f"table: {env['results'] / 'synthetic' / 'noise.md'}" in out
    assert adversarial.main(argv[:4] + ["--folds", "F01", "--snrs", "20", "--pgd-steps", "2", "--seeds", "1"]) == 0
    assert "| mtl_aug_w | 0 | PGD |" in (env["results"] / "synthetic" / "adversarial.md").read_text()

    # flags that would make other models than the folder's are refused, naming the conflict
    (env["tmp"] / "empty").mkdir()
    for flags, message in (
            (["--system", str(env["tmp"] / "nowhere")], "no such folder"),
            (["--system", str(env["tmp"] / "empty")], r"not a cv result folder \(no summary.json\)"),
            (["--system", str(folder), "--max-epochs", "1"], "drop --max-epochs"),
            (["--system", str(folder), "--", "--model.w_aug=1"], "drop --max-epochs and the LightningCLI flags"),
            (["--system", str(folder), "--normalize", "speaker"], "--normalize speaker contradicts"),
            (["--system", str(folder), "--results-dir", str(env["tmp"])], "--results-dir .* contradicts"),
            (["--system", str(folder), "--corpus", "emodb"], "its runs trained on synthetic, not --corpus emodb")):
        own, extra = (flags[:flags.index("--")], flags[flags.index("--"):]) if "--" in flags else (flags, [])
        with pytest.raises(SystemExit, match=message):
            noise.main(["--corpus", "synthetic", "--snrs", "20", *own, *extra])

def test_adversarial_end_to_end(env, cv_done):
    argv = ["--corpus", "synthetic", "--system", "mtl_aug", "--folds", "F01", "--snrs", "20", "--pgd-steps", "2",
            "--results-dir", str(env["results"] / "synthetic"), *common(env), *env["extra"]]
    assert adversarial.main(argv) == 0
    s = json.loads((cv_done / "adversarial" / "summary.json").read_text())
    assert s["order"] == ["clean", "fgsm 20 dB", "pgd 20 dB"]
    assert s["clean_differs_from_cv"] == []  # the clean condition reproduces the cv test UAR
    assert all(0 <= s["conditions"][c]["uar"]["mean"] <= 1 for c in s["order"])
    assert (env["results"] / "synthetic" / "adversarial.png").exists()
    assert "| mtl_aug | 0 | PGD |" in (env["results"] / "synthetic" / "adversarial.md").read_text()


def test_cross_corpus_with_speaker_normalisation(env):
    out = env["results"] / "cross" / "synthetic_to_synthetic" / "mtl_aug_speakernorm"
    argv = ["--train", "synthetic", "--test", "synthetic", "--system", "mtl_aug", "--normalize", "speaker",
            "--out", str(out), *common(env), *env["extra"]]
    assert cross.main(argv) == 0
    s = json.loads((out / "summary.json").read_text())
    assert s["normalize"] == "speaker" and s["folds"] == ["all"]
    assert (out / "confusion.png").exists()
    res = json.loads((out / "runs" / "all_s0" / runs.RESULT_FILE).read_text())
    assert res["fold_info"]["n_test"] == 32  # every labelled utterance of the test corpus
    ckpt = torch.load(res["best_checkpoint"], map_location="cpu", weights_only=False)
    assert sorted(ckpt["speaker_norm"]["stats"]) == ["synthetic:F01", "synthetic:F03", "synthetic:M02", "synthetic:M04"]
    assert "mtl_aug_speakernorm" in (out.parent.parent / "synthetic_to_synthetic.md").read_text()


def test_cross_seeds_in_parallel(env):
    """cross --jobs 2: one spawned process per seed; both seeds' runs land in the summary."""
    out = env["results"] / "cross" / "synthetic_to_synthetic" / "stl"
    before = len(runs.EXECUTED)
    argv = ["--train", "synthetic", "--test", "synthetic", "--system", "stl", "--out", str(out), *common(env),
            "--seeds", "0,1", "--jobs", "2", *env["extra"]]
    assert cross.main(argv) == 0
    assert sorted(runs.EXECUTED[before:]) == ["all_s0", "all_s1"]
    s = json.loads((out / "summary.json").read_text())
    assert s["seeds"] == [0, 1] and s["uar"]["n"] == 2


def test_paper_tables(env, cv_done, capsys):
    argv = ["--corpora", "synthetic,emodb_missing", "--systems", "mtl_aug,stl", "--cross", "synthetic:synthetic",
            "--robustness-corpus", "synthetic", "--folds", FOLDS, "--results-root", str(env["results"]),
            *common(env)]
    assert paper.main(argv + ["--dry-run"]) == 0
    listing = capsys.readouterr().out
    assert "cv synthetic mtl_aug" in listing and "2 finished run(s)" in listing and "skipped: emodb_missing" in listing
    assert paper.main(argv + ["--tables-only"]) == 0
    md = (env["results"] / "tables.md").read_text()
    assert "### Within-corpus: synthetic" in md
    assert any(line.startswith("| stl |") and "not run" in line for line in md.splitlines())
    assert any(line.startswith("| mtl_aug | utterance |") for line in md.splitlines())
    assert "### Noise robustness: synthetic" in md and "### Cross-corpus: synthetic → synthetic" in md
    assert "LOSO" in md and "emodb_missing" in md
    assert "Validation vs test (synthetic" in md  # curves of the finished cv runs
    assert (env["results"] / "synthetic" / "curves" / "val_vs_test.png").exists()
    # rebuilding the tables needs the finished results, not the audio: same tables with the corpus root unset
    with pytest.MonkeyPatch.context() as mp:
        mp.delenv("SYNTHETIC_ROOT")
        assert paper.main(argv + ["--tables-only"]) == 0
    without_root = (env["results"] / "tables.md").read_text()
    assert without_root.split("## Provenance")[0] == md.split("## Provenance")[0]
    assert "no finished results under" in without_root and "emodb_missing" in without_root


@pytest.fixture(scope="module")
def speakernorm_cv(env):
    out = runs.normalized_out(env["results"] / "synthetic" / "stl", "speaker")
    argv = ["--corpus", "synthetic", "--system", "stl", "--folds", "F01", "--normalize", "speaker", "--out", str(out),
            *common(env), *env["extra"], "--model.class_weights=balanced"]
    assert cv.main(argv) == 0
    return out


def test_cv_with_speaker_normalisation_and_balanced_weights(env, speakernorm_cv):
    """Within-corpus cv with per-speaker log-mel statistics (the test speaker's audio, not its labels)."""
    out = speakernorm_cv
    assert out.name == "stl_speakernorm"
    s = json.loads((out / "summary.json").read_text())
    assert s["normalize"] == "speaker" and "speaker-level log-mel normalisation" in (out / "summary.md").read_text()
    res = json.loads((out / "runs" / "F01_s0" / runs.RESULT_FILE).read_text())
    ckpt = torch.load(res["best_checkpoint"], map_location="cpu", weights_only=False)
    assert "synthetic:F01" in ckpt["speaker_norm"]["stats"]  # the test speaker has statistics
    assert ckpt["hyper_parameters"]["front_end"]["init_args"]["normalize"] == "speaker"  # no self-normalisation
    # balanced weights were computed from the training rows (synthetic classes are balanced -> all 1)
    w = ckpt["state_dict"]["network.head.class_weights"]
    assert torch.allclose(w, torch.ones(4))
    table = paper.within_table(env["results"], "synthetic", ["stl"])
    assert any(line.startswith("| stl | speaker |") for line in table.splitlines())


def test_cv_parallel_jobs_match_sequential(env, capfd):
    """--jobs 2 trains the folds in two spawned processes; same results, in fold order, as one process.
    Every epoch line names its run, since parallel runs print into one log."""
    outs = {}
    for jobs in (1, 2):
        outs[jobs] = env["results"] / "synthetic" / f"stl_jobs{jobs}"
        before = len(runs.EXECUTED)
        argv = ["--corpus", "synthetic", "--system", "stl", "--folds", FOLDS, "--out", str(outs[jobs]),
                "--jobs", str(jobs), *common(env), *env["extra"]]
        assert cv.main(argv) == 0
        assert sorted(runs.EXECUTED[before:]) == ["F01_s0", "M02_s0"]
        out = capfd.readouterr().out
        for fold in FOLDS.split(","):
            assert f"fold {fold} seed 0 |  epoch 1/1  train/loss_epoch" in out, (jobs, out[-2000:])
    seq, par = (list(csv.DictReader(open(outs[j] / "predictions.csv"))) for j in (1, 2))
    assert [r["key"] for r in par] == [r["key"] for r in seq]
    for a, b in zip(seq, par):
        assert float(a["prob_angry"]) == pytest.approx(float(b["prob_angry"]), abs=1e-4)
    before = len(runs.EXECUTED)
    assert cv.main(["--corpus", "synthetic", "--system", "stl", "--folds", FOLDS, "--out", str(outs[2]), "--jobs", "2",
                    *common(env), *env["extra"]]) == 0
    assert len(runs.EXECUTED) == before  # resumed: nothing redone


def test_noise_and_adversarial_on_speaker_normalised_checkpoints(env, speakernorm_cv):
    """--normalize speaker: the cv checkpoints of <system>_speakernorm; clean = the cv test (stored statistics),
    noisy = the test speaker's statistics recomputed from its noisy audio."""
    from mtl_aug.checkpoints import load_for_evaluation
    from mtl_aug.evaluation.group_norm import EvalGroupNorm

    before = list(runs.EXECUTED)
    argv = ["--corpus", "synthetic", "--system", "stl", "--folds", "F01", "--snrs", "0", "--normalize", "speaker",
            "--results-dir", str(env["results"] / "synthetic"), *common(env), *env["extra"]]
    assert noise.main(argv) == 0
    assert not [n for n in runs.EXECUTED[len(before):] if ":" not in n]  # no training
    res = json.loads((speakernorm_cv / "noise" / "runs" / "F01_s0" / runs.RESULT_FILE).read_text())
    assert res["clean_matches_cv"] is True
    s = json.loads((speakernorm_cv / "noise" / "summary.json").read_text())
    assert s["normalize"] == "speaker" and "recomputed from its noisy test audio" in s["protocol"]
    assert "| stl_speakernorm |" in (env["results"] / "synthetic" / "noise.md").read_text()

    # the recomputation itself: on unperturbed audio it gives the stored statistics back; noise changes them
    model, dm, state = load_for_evaluation(res["checkpoint"])
    norm = EvalGroupNorm(model, dm, state)
    stored = norm.stored["synthetic:F01"]
    norm.use(lambda b: b["wave"])
    again = norm.group_norm.stats["synthetic:F01"]
    assert torch.allclose(again[0], stored[0], atol=1e-3) and torch.allclose(again[1], stored[1], atol=1e-3)
    norm.use(lambda b: b["wave"] + 0.3 * torch.randn_like(b["wave"]))
    assert not torch.allclose(norm.group_norm.stats["synthetic:F01"][0], stored[0], atol=1e-2)
    norm.use(None)
    assert norm.group_norm.stats["synthetic:F01"] is norm.stored["synthetic:F01"]

    argv = ["--corpus", "synthetic", "--system", "stl", "--folds", "F01", "--snrs", "20", "--pgd-steps", "2",
            "--normalize", "speaker", "--results-dir", str(env["results"] / "synthetic"), *common(env), *env["extra"]]
    assert adversarial.main(argv) == 0
    s = json.loads((speakernorm_cv / "adversarial" / "summary.json").read_text())
    assert s["clean_differs_from_cv"] == [] and "clean (enrolment) audio" in s["protocol"]
