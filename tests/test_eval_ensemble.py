"""Seed ensembles of a cv result (mtl_aug.evaluation.ensemble): soft voting, checks, cv-format output."""

import json

import numpy as np
import pytest
from sklearn.metrics import balanced_accuracy_score

from mtl_aug.cli import main as cli_main
from mtl_aug.evaluation import ensemble, paired
from mtl_aug.evaluation.results import write_csv

CLASSES = ["angry", "happy", "neutral", "sad"]


def _pred(fold, seed, key, label, probs):
    return {"fold": fold, "seed": seed, "key": key, "speaker": fold, "label": label, "pred": int(np.argmax(probs)),
            "label_name": CLASSES[label], "pred_name": CLASSES[int(np.argmax(probs))],
            **{f"prob_{c}": p for c, p in zip(CLASSES, probs)}}


def test_soft_vote_averages_probabilities_not_votes():
    # seeds 0 and 1 both say "angry" by a hair, seed 2 says "happy" with confidence: the mean says "happy",
    # a majority vote would say "angry"
    rows = [_pred("01", 0, "u1", 1, [0.40, 0.35, 0.25, 0.0]), _pred("01", 1, "u1", 1, [0.40, 0.39, 0.21, 0.0]),
            _pred("01", 2, "u1", 1, [0.05, 0.90, 0.05, 0.0])]
    (v,) = ensemble.soft_vote(rows)
    assert v["pred"] == 1 and v["pred_name"] == "happy" and v["seed"] == ensemble.ENSEMBLE_SEED
    assert v["prob_happy"] == pytest.approx((0.35 + 0.39 + 0.90) / 3, abs=1e-6)
    # members chosen explicitly: seeds 0 and 1 alone say "angry"
    (v01,) = ensemble.soft_vote(rows, seeds=[0, 1])
    assert v01["pred"] == 0


def test_soft_vote_breaks_a_tie_towards_the_first_class():
    rows = [_pred("01", 0, "u1", 2, [0.5, 0.5, 0.0, 0.0]), _pred("01", 1, "u1", 2, [0.3, 0.3, 0.4, 0.0])]
    assert ensemble.soft_vote(rows, seeds=[0])[0]["pred"] == 0


def test_a_member_missing_an_utterance_is_a_named_error():
    rows = [_pred("01", 0, "u1", 0, [1, 0, 0, 0]), _pred("01", 1, "u1", 0, [1, 0, 0, 0]),
            _pred("02", 0, "u2", 0, [1, 0, 0, 0])]
    with pytest.raises(ValueError, match=r"fold 02 u2: no prediction from seed\(s\) \[1\]"):
        ensemble.soft_vote(rows)


def test_unknown_seed_label_disagreement_and_missing_probabilities_are_errors():
    rows = [_pred("01", 0, "u1", 0, [1, 0, 0, 0]), _pred("01", 1, "u1", 3, [1, 0, 0, 0])]
    with pytest.raises(ValueError, match=r"seeds \[5\] have no predictions \(available: \[0, 1\]\)"):
        ensemble.soft_vote(rows, seeds=[0, 5])
    with pytest.raises(ValueError, match=r"fold 01 u1: the members disagree on the label \(\[0, 3\]\)"):
        ensemble.soft_vote(rows)
    bare = [{k: v for k, v in r.items() if not k.startswith("prob_")} for r in rows]
    with pytest.raises(ValueError, match="no prob_<class> columns"):
        ensemble.soft_vote(bare)


def _fake_cv(folder, n_seeds=3, shift=0.0, seed=0):
    """A cv folder (predictions.csv, folds.csv, summary.json) of 3 folds x n_seeds noisy members."""
    rng = np.random.default_rng(seed)
    preds, folds = [], []
    for fold in ("01", "02", "03"):
        labels = rng.integers(0, 4, size=24)
        for s in range(n_seeds):
            logits = rng.normal(0, 1.0, size=(24, 4))
            logits[np.arange(24), labels] += 0.8 + shift
            probs = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
            rows = [_pred(fold, s, f"{fold}_u{i}", int(labels[i]), probs[i].tolist()) for i in range(24)]
            preds += rows
            folds.append({"fold": fold, "seed": s, "uar": balanced_accuracy_score(labels, probs.argmax(1)),
                          "wa": 0.0, "f1": 0.0})
    folder.mkdir(parents=True)
    write_csv(folder / "predictions.csv", preds)
    write_csv(folder / "folds.csv", folds)
    (folder / "summary.json").write_text(json.dumps({"trained_at": ["abc"], "protocol": "fake, 3 folds",
                                                     "seeds": list(range(n_seeds))}))
    return preds


def test_ensemble_command_writes_a_cv_format_result_that_compare_pairs(tmp_path, capsys):
    preds = _fake_cv(tmp_path / "a")
    _fake_cv(tmp_path / "b", shift=-0.6, seed=1)
    assert cli_main(["ensemble", str(tmp_path / "a")]) == 0
    assert "ensemble of seeds 0,1,2" in capsys.readouterr().out
    out = tmp_path / "a" / "ensemble"
    s = json.loads((out / "summary.json").read_text())
    assert s["members"] == [0, 1, 2] and s["trained_at"] == ["abc"]
    # per fold, the UAR is sklearn's balanced accuracy of the argmax of the mean probabilities
    rows = paired.read_fold_rows(out)
    for r in rows:
        mine = [p for p in preds if p["fold"] == r["fold"]]
        mean = np.mean([[[p[f"prob_{c}"] for c in CLASSES] for p in mine if p["seed"] == s] for s in range(3)], 0)
        labels = [p["label"] for p in mine if p["seed"] == 0]  # same utterance order in every seed
        assert len(labels) == 24
        assert float(r["uar"]) == pytest.approx(balanced_accuracy_score(labels, mean.argmax(1)), abs=1e-6)
        members = [p for p in paired.read_fold_rows(tmp_path / "a") if p["fold"] == r["fold"]]
        assert float(r["members_mean_uar"]) == pytest.approx(np.mean([float(m["uar"]) for m in members]))
    # the ensemble of noisy members beats their mean here (independent noise averages out)
    assert s["uar"]["mean"] > s["members_uar"]["mean"]
    assert (out / "confusion.png").stat().st_size > 0 and "Per fold" in (out / "summary.md").read_text()
    assert "Protocol of the members: fake, 3 folds." in (out / "summary.md").read_text()
    # two ensembles pair fold by fold in compare
    assert cli_main(["ensemble", str(tmp_path / "b"), "--seeds", "2", "--out", str(tmp_path / "b_ens")]) == 0
    assert json.loads((tmp_path / "b_ens" / "summary.json").read_text())["members"] == [0, 1]
    r = paired.compare(paired.read_fold_rows(out), paired.read_fold_rows(tmp_path / "b_ens"))
    assert r["n_folds"] == 3 and r["seeds"] == [ensemble.ENSEMBLE_SEED]


def test_ensemble_command_names_a_folder_without_predictions(tmp_path):
    with pytest.raises(SystemExit, match=r"ensemble: .*predictions.csv: missing"):
        cli_main(["ensemble", str(tmp_path / "nothing")])


def test_paper_tables_ensemble_section_pairs_each_ensemble_with_stls(tmp_path):
    from mtl_aug.evaluation import paper

    _fake_cv(tmp_path / "emodb" / "stl", shift=-0.6)  # same generator seed: same utterances and labels
    _fake_cv(tmp_path / "emodb" / "mtl_aug")
    _fake_cv(tmp_path / "emodb" / "no_recon", n_seeds=1, seed=2)  # one seed: nothing to ensemble
    text = paper.ensemble_section(tmp_path, "emodb", ["stl", "mtl_aug", "no_recon"])
    stl, mtl = (ensemble.build(tmp_path / "emodb" / s)[0] for s in ("stl", "mtl_aug"))
    line = next(l for l in text.splitlines() if l.startswith("| mtl_aug | utterance"))
    assert f"| {100 * mtl['uar']['mean']:.1f} |" in line
    assert f"{100 * (mtl['uar']['mean'] - stl['uar']['mean']):+.1f} [" in line
    perm = ensemble.permutation_test(*(paired.read_prediction_rows(tmp_path / "emodb" / s) for s in ("mtl_aug", "stl")))
    assert line.endswith(f"p = {perm['p']:.2f} |")
    assert "| no_recon |" not in text
    assert paper.ensemble_section(tmp_path, "ravdess", ["stl"]) == ""


def _fold_mean_ba(rows, members):
    """Reference: the soft vote of ``members`` scored with sklearn, fold by fold."""
    out = []
    for fold in sorted({r["fold"] for r in rows}):
        mine = [r for r in rows if r["fold"] == fold and (r["seed"], r["side"]) in members]
        keys = sorted({r["key"] for r in mine})
        probs = [np.mean([[r[f"prob_{c}"] for c in CLASSES] for r in mine if r["key"] == k], 0) for k in keys]
        labels = [next(r["label"] for r in mine if r["key"] == k) for k in keys]
        out.append(balanced_accuracy_score(labels, np.argmax(probs, 1)))
    return float(np.mean(out))


def test_permutation_test_matches_brute_force_over_every_split(tmp_path):
    import itertools

    a = _fake_cv(tmp_path / "a", n_seeds=3, shift=0.3)
    b = _fake_cv(tmp_path / "b", n_seeds=3, shift=-0.3, seed=1)
    b = [{**r, "key": r["key"], "label": la["label"]} for r, la in zip(b, a)]  # same utterances and labels
    r = ensemble.permutation_test(a, b)
    tagged = [{**x, "side": "a"} for x in a] + [{**x, "side": "b"} for x in b]
    pool = [(s, side) for side in "ab" for s in range(3)]
    observed = _fold_mean_ba(tagged, pool[:3]) - _fold_mean_ba(tagged, pool[3:])
    assert r["delta"] == pytest.approx(observed, abs=1e-6)
    splits = list(itertools.combinations(range(6), 3))
    diffs = [_fold_mean_ba(tagged, [pool[i] for i in s]) - _fold_mean_ba(tagged, [pool[i] for i in range(6) if i not in s])
             for s in splits]
    assert r["exact"] and r["n_splits"] == 20
    assert r["p"] == pytest.approx(np.mean([abs(d) >= abs(observed) - 1e-9 for d in diffs]))
    # more splits than max_exact: seeded random splits, close to the exact answer
    r1, r2 = (ensemble.permutation_test(a, b, max_exact=10, n_random=2000, seed=4) for _ in range(2))
    assert not r1["exact"] and r1["p"] == r2["p"] and abs(r1["p"] - r["p"]) < 0.05
    with pytest.raises(ValueError, match="not the same folds"):
        ensemble.permutation_test(a, _fake_cv(tmp_path / "c", seed=9))  # other labels


def test_compare_ensemble_flag(tmp_path, capsys):
    _fake_cv(tmp_path / "a", shift=0.3)
    rows = _fake_cv(tmp_path / "b", shift=-0.3)  # same generator seed: same utterances and labels as a
    assert cli_main(["compare", str(tmp_path / "a"), str(tmp_path / "b"), "--ensemble"]) == 0
    out = capsys.readouterr().out
    assert "| ensembles: a − b |" in out and "permutation p =" in out and "all 20 splits" in out
    assert "recall per class" in out
    assert cli_main(["compare", str(tmp_path / "a"), str(tmp_path / "b"), "--ensemble", "--exclude-folds", "03"]) == 0
    assert "without folds 03" in capsys.readouterr().out
    write_csv(tmp_path / "b" / "predictions.csv", [r for r in rows if (r["key"], r["seed"]) != ("02_u5", 1)])
    with pytest.raises(SystemExit, match=r"compare --ensemble: .*fold 02 02_u5: no prediction from seed\(s\) \[1\]"):
        cli_main(["compare", str(tmp_path / "b"), str(tmp_path / "a"), "--ensemble"])
    write_csv(tmp_path / "b" / "predictions.csv", [r for r in rows if r["key"] != "02_u5"])
    with pytest.raises(SystemExit, match=r"compare --ensemble: .*\(72 vs 71 utterances\): not the same folds"):
        cli_main(["compare", str(tmp_path / "a"), str(tmp_path / "b"), "--ensemble"])


def test_fuse_averages_each_systems_seed_mean_with_equal_weights(tmp_path, capsys):
    """Late fusion (mtl_aug.evaluation.fusion): system A's 3 seeds are one model, B's 3 another, each weighs 1/2."""
    a = _fake_cv(tmp_path / "a")
    b = _fake_cv(tmp_path / "b", shift=0.5)  # same rng stream: same labels, other probabilities
    assert cli_main(["fuse", str(tmp_path / "a"), str(tmp_path / "b"), "--out", str(tmp_path / "ab")]) == 0
    assert "late fusion of" in capsys.readouterr().out
    s = json.loads((tmp_path / "ab" / "summary.json").read_text())
    assert s["members"] == [0, 1] and s["protocol"] == "fake, 3 folds"

    def seed_mean(rows, fold):
        return np.mean([[[p[f"prob_{c}"] for c in CLASSES] for p in rows if p["fold"] == fold and p["seed"] == k]
                        for k in range(3)], 0)

    for r in paired.read_fold_rows(tmp_path / "ab"):
        fused = (seed_mean(a, r["fold"]) + seed_mean(b, r["fold"])) / 2
        labels = [p["label"] for p in a if p["fold"] == r["fold"] and p["seed"] == 0]
        assert float(r["uar"]) == pytest.approx(balanced_accuracy_score(labels, fused.argmax(1)), abs=1e-6)
    md = (tmp_path / "ab" / "summary.md").read_text()
    assert "| fold | fused UAR | a | b |" in md


def test_fuse_refuses_systems_of_other_utterances_or_classes(tmp_path):
    _fake_cv(tmp_path / "a")
    rows = _fake_cv(tmp_path / "b")
    write_csv(tmp_path / "b" / "predictions.csv", [r for r in rows if r["key"] != "02_u5"])
    with pytest.raises(SystemExit, match=r"fuse: 1 utterance\(s\) lack a member's prediction, e.g. fold 02 02_u5"):
        cli_main(["fuse", str(tmp_path / "a"), str(tmp_path / "b"), "--out", str(tmp_path / "ab")])
    write_csv(tmp_path / "b" / "predictions.csv", [{k.replace("prob_sad", "prob_calm"): v for k, v in r.items()}
                                                   for r in rows])
    with pytest.raises(SystemExit, match=r"fuse: .*b: classes .*prob_calm.* differ"):
        cli_main(["fuse", str(tmp_path / "a"), str(tmp_path / "b"), "--out", str(tmp_path / "ab")])
    with pytest.raises(SystemExit, match=r"fuse: at least two cv folders are needed"):
        cli_main(["fuse", str(tmp_path / "a"), "--out", str(tmp_path / "ab")])
