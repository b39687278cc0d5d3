"""Paired comparison of two systems on the same folds and seeds (mtl_aug.evaluation.paired)."""

import csv

import numpy as np
import pytest
from scipy.stats import binomtest

from mtl_aug.cli import main as cli_main
from mtl_aug.evaluation import paired


def _rows(uars: dict[tuple[str, int], float]) -> list[dict]:
    return [{"fold": f, "seed": s, "uar": u} for (f, s), u in uars.items()]


@pytest.mark.parametrize("wins,losses", [(0, 0), (5, 5), (9, 1), (10, 0), (2, 7), (0, 12)])
def test_sign_test_matches_scipy(wins, losses):
    expected = 1.0 if wins + losses == 0 else binomtest(wins, wins + losses, 0.5).pvalue
    assert paired.sign_test_p(wins, losses) == pytest.approx(expected)


def test_compare_averages_shared_seeds_per_fold_and_counts_folds():
    a = _rows({("01", 0): 0.8, ("01", 1): 0.6, ("02", 0): 0.5, ("03", 0): 0.7, ("04", 0): 0.9})
    b = _rows({("01", 0): 0.6, ("01", 1): 0.6, ("02", 0): 0.6, ("03", 0): 0.7, ("05", 0): 0.1})
    r = paired.compare(a, b)
    # fold 01: mean(+0.2, 0.0) = +0.1; fold 02: -0.1; fold 03: 0; folds 04/05 are not shared
    assert r["n_folds"] == 3 and r["n_pairs"] == 4 and r["seeds"] == [0, 1]
    assert r["per_fold"]["01"]["diff"] == pytest.approx(0.1)
    assert r["delta"] == pytest.approx(0.0)
    assert (r["better"], r["worse"], r["tied"]) == (1, 1, 1)
    assert r["p"] == pytest.approx(1.0)


def test_bootstrap_ci_is_seeded_and_covers_a_consistent_gain():
    rng = np.random.default_rng(1)
    base = {(f"{i:02d}", s): float(rng.uniform(0.4, 0.9)) for i in range(10) for s in range(3)}
    better = {k: v + 0.05 + float(rng.normal(0, 0.01)) for k, v in base.items()}
    r1 = paired.compare(_rows(better), _rows(base), seed=3)
    r2 = paired.compare(_rows(better), _rows(base), seed=3)
    assert r1["ci"] == r2["ci"]
    lo, hi = r1["ci"]
    assert 0.0 < lo < r1["delta"] < hi < 0.1
    assert r1["better"] == 10 and r1["p"] == pytest.approx(2 / 2 ** 10)
    # swapping A and B mirrors everything
    r3 = paired.compare(_rows(base), _rows(better), seed=3)
    assert r3["delta"] == pytest.approx(-r1["delta"]) and r3["worse"] == 10


def test_no_shared_runs_is_reported_not_crashed():
    r = paired.compare(_rows({("01", 0): 0.5}), _rows({("02", 0): 0.5}))
    assert r["n_folds"] == 0 and np.isnan(r["delta"])
    assert paired.row("a − b", r)[3] == "no shared fold × seed"


def _write_folds(d, uars):
    d.mkdir(parents=True)
    with (d / "folds.csv").open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=["fold", "seed", "uar", "wa", "f1"])
        w.writeheader()
        for (fold, seed), u in uars.items():
            w.writerow({"fold": fold, "seed": seed, "uar": u, "wa": u, "f1": u})


def test_class_recalls_over_the_shared_runs_only():
    preds = [{"fold": "01", "seed": 0, "label": 0, "pred": 0, "label_name": "angry"},
             {"fold": "01", "seed": 0, "label": 0, "pred": 1, "label_name": "angry"},
             {"fold": "01", "seed": 0, "label": 1, "pred": 1, "label_name": "sad"},
             {"fold": "02", "seed": 0, "label": 1, "pred": 0, "label_name": "sad"},  # not a shared run
             {"fold": "01", "seed": 1, "label": 1, "pred": 0, "label_name": "sad"}]
    assert paired.class_recalls(preds, {("01", 0), ("01", 1)}) == {"angry": 0.5, "sad": 0.5}
    r = paired.compare(_rows({("01", 0): 0.5, ("02", 1): 0.4}), _rows({("01", 0): 0.6, ("03", 0): 0.4}))
    assert paired.shared_runs(r) == {("01", 0)}


def test_compare_cli_prints_table_and_names_a_missing_result(tmp_path, capsys):
    _write_folds(tmp_path / "a", {("01", 0): 0.9, ("02", 0): 0.8})
    _write_folds(tmp_path / "b", {("01", 0): 0.7, ("02", 0): 0.7})
    assert cli_main(["compare", str(tmp_path / "a"), str(tmp_path / "b")]) == 0
    out = capsys.readouterr().out
    assert "| a − b | +15.0 |" in out and "2 / 0 / 0" in out and "01: +20.0" in out
    assert "over seeds (mean over the 2 shared folds, points): A 85.0 (seeds 0); B 70.0 (seeds 0); Δ +15.0, permutation p = 1.000" in out
    assert "recall per class" not in out  # no predictions.csv: no per-class table
    for d, pred in (("a", 0), ("b", 1)):
        with (tmp_path / d / "predictions.csv").open("w", newline="") as f:
            w = csv.DictWriter(f, ["fold", "seed", "label", "pred", "label_name"])
            w.writeheader()
            w.writerow({"fold": "01", "seed": 0, "label": 0, "pred": pred, "label_name": "angry"})
    assert cli_main(["compare", str(tmp_path / "a"), str(tmp_path / "b")]) == 0
    assert "| angry | 100.0 | 0.0 | +100.0 |" in capsys.readouterr().out
    _write_folds(tmp_path / "x" / "a", {("01", 0): 0.5})
    assert cli_main(["compare", str(tmp_path / "a"), str(tmp_path / "x" / "a")]) == 0
    assert f"| {tmp_path.name}/a − x/a | +40.0 |" in capsys.readouterr().out
    assert cli_main(["compare", str(tmp_path / "a"), str(tmp_path / "b"), "--exclude-folds", "01"]) == 0
    out = capsys.readouterr().out
    assert "| a − b (without folds 01) | +10.0 |" in out and "1 / 0 / 0" in out and "01:" not in out
    with pytest.raises(SystemExit, match=r"--exclude-folds 07: no such fold in either result"):
        cli_main(["compare", str(tmp_path / "a"), str(tmp_path / "b"), "--exclude-folds", "01,07"])
    with pytest.raises(SystemExit, match=r"missing.*folds.csv"):
        cli_main(["compare", str(tmp_path / "missing"), str(tmp_path / "b")])


def test_paper_tables_section_pairs_each_system_with_stl_under_the_same_normalisation(tmp_path):
    from mtl_aug.evaluation import paper

    root = tmp_path / "results"
    _write_folds(root / "c" / "stl", {("01", 0): 0.6, ("02", 0): 0.6})
    _write_folds(root / "c" / "mtl_aug", {("01", 0): 0.7, ("02", 0): 0.8})
    _write_folds(root / "c" / "stl_speakernorm", {("01", 0): 0.9, ("02", 0): 0.9})
    _write_folds(root / "c" / "mtl_aug_speakernorm", {("01", 0): 0.8, ("02", 0): 0.9})
    _write_folds(root / "c" / "no_recon", {("03", 0): 0.8})  # no fold shared with stl: no row
    text = paper.paired_section(root, "c", ["stl", "mtl_aug", "no_recon"])
    lines = text.splitlines()
    assert any(line.startswith("| mtl_aug − stl (utterance) | +15.0 |") for line in lines)
    assert any(line.startswith("| mtl_aug − stl (speaker) | -5.0 |") and "0 / 1 / 1" in line for line in lines)
    assert "no_recon" not in text
    assert paper.paired_section(root, "other", ["stl", "mtl_aug"]) == ""


def test_paper_tables_pair_the_ablations_with_mtl_aug(tmp_path):
    from mtl_aug.evaluation import paper

    root = tmp_path / "results"
    _write_folds(root / "c" / "stl", {("01", 0): 0.6, ("02", 0): 0.6})
    _write_folds(root / "c" / "mtl_aug", {("01", 0): 0.7, ("02", 0): 0.8})
    _write_folds(root / "c" / "no_recon", {("01", 0): 0.8, ("02", 0): 0.9})
    paper.write_tables(root, ["c"], ["stl", "mtl_aug", "no_recon"], [], None, {})
    text = (root / "tables.md").read_text()
    assert "Paired against mtl_aug" in text
    assert "| no_recon − mtl_aug (utterance) | +10.0 |" in text
    assert "| no_recon − stl (utterance) | +25.0 |" in text


def test_paper_tables_include_the_robustness_tables_of_sub_folders(tmp_path):
    from mtl_aug.evaluation import paper

    root = tmp_path / "results"
    _write_folds(root / "c" / "stl", {("01", 0): 0.6})
    (root / "c" / "noise.md").write_text("## UAR vs SNR\n\n| stl | 0 | 60.0 |\n")
    (root / "c" / "retrained").mkdir()
    (root / "c" / "retrained" / "adversarial.md").write_text("## attacks\n\n| stl_speakernorm | 0 | FGSM | 70.0 |\n")
    paper.write_tables(root, ["c"], ["stl"], [], "c", {})
    text = (root / "tables.md").read_text()
    assert "### Noise robustness: c\n\n| stl | 0 | 60.0 |" in text
    assert "### Adversarial robustness: c/retrained\n\n| stl_speakernorm | 0 | FGSM | 70.0 |" in text
    assert "### Noise robustness: c/retrained\n\nnot run" in text
    assert "### Noise robustness: c/stl" not in text  # a system folder has no tables of its own


def test_within_table_draws_one_bar_per_system_and_normalisation(tmp_path):
    import json

    from mtl_aug.evaluation import paper

    root = tmp_path / "results"
    for name, norm, mean, seeds in (("stl", "utterance", 0.7, [0, 1]), ("stl_speakernorm", "speaker", 0.85, [0]),
                                    ("mtl_aug", "utterance", 0.68, [0, 1, 2])):
        d = root / "emodb" / name
        d.mkdir(parents=True)
        summary = {"normalize": norm, "seeds": seeds, "protocol": "emodb, LOSO",
                   **{m: {"mean": mean, "std": 0.02 if len(seeds) > 1 else 0.0, "n": len(seeds)}
                      for m in ("uar", "wa", "f1")}}
        (d / "summary.json").write_text(json.dumps(summary))
    text = paper.within_table(root, "emodb", ["stl", "mtl_aug", "no_recon"])
    png = root / "emodb" / "within.png"
    assert png.exists() and png.stat().st_size > 5000 and "Plot: `within.png`" in text
    assert "| no_recon |  | not run |" in text


@pytest.mark.parametrize("a,b", [([0.70, 0.72, 0.75], [0.68, 0.69, 0.66]), ([0.7, 0.7], [0.7, 0.6, 0.8, 0.65]),
                                 ([0.71, 0.69, 0.74, 0.68, 0.75], [0.65, 0.70, 0.72, 0.68, 0.69])])
def test_permutation_p_matches_scipy_exact(a, b):
    from scipy.stats import permutation_test

    expected = permutation_test((a, b), lambda x, y: np.mean(x) - np.mean(y), permutation_type="independent",
                                n_resamples=10**6, alternative="two-sided").pvalue
    assert paired.permutation_p(a, b) == pytest.approx(expected)
    assert paired.permutation_p([0.9, 0.91, 0.92], [0.5, 0.51, 0.52]) == pytest.approx(2 / 20)  # 3 + 3: min p
    assert paired.permutation_p([], [0.5]) == 1.0


def test_permutation_p_random_splits_are_seeded_and_close_to_exact():
    rng = np.random.default_rng(0)
    a, b = list(rng.normal(0.72, 0.03, 9)), list(rng.normal(0.69, 0.03, 9))
    exact = paired.permutation_p(a, b)
    drawn = paired.permutation_p(a, b, max_exact=10, n_random=20000, seed=1)
    assert drawn == paired.permutation_p(a, b, max_exact=10, n_random=20000, seed=1)
    assert abs(drawn - exact) < 0.02


def test_over_seeds_uses_shared_folds_and_only_complete_seeds():
    a = _rows({("01", 0): 0.8, ("02", 0): 0.6, ("01", 1): 0.9, ("02", 1): 0.7, ("01", 2): 0.5,  # seed 2: no 02
               ("03", 0): 0.1})  # fold 03 is A's only
    b = _rows({("01", 0): 0.6, ("02", 0): 0.6, ("01", 5): 0.5, ("02", 5): 0.5})
    r = paired.compare(a, b)
    s = r["over_seeds"]
    assert s["seeds_a"] == [0, 1] and s["seeds_b"] == [0, 5]
    assert s["mean_a"] == pytest.approx(0.75) and s["mean_b"] == pytest.approx(0.55)
    assert s["delta"] == pytest.approx(0.2) and s["p_seeds"] == pytest.approx(2 / 6)
    assert paired.row("a − b", r)[-1] == "+20.0 (p 0.33; 2 / 2)"
    assert paired.over_seeds(a, b, set())["seeds_a"] == []
