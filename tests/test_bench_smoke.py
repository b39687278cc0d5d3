"""The benchmark suite's functions at tiny sizes, so the benchmark code cannot rot (no timing assertions)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "benchmarks"
sys.path.insert(0, str(BENCH))

import bench_cv  # noqa: E402
import bench_data  # noqa: E402
import bench_training  # noqa: E402
import common  # noqa: E402


@pytest.fixture
def corpus(synthetic_corpus) -> dict:
    from mtl_aug.data.folds import read_folds

    fold = read_folds(synthetic_corpus["manifest_dir"] / "synthetic" / "folds.json")["folds"][0]["name"]
    return {"corpus": "synthetic", "fold": fold, "root": str(synthetic_corpus["root"]),
            "manifest_dir": str(synthetic_corpus["manifest_dir"]), "cache_dir": str(synthetic_corpus["cache_dir"]),
            "synthetic": True}


def test_system_configs_match_the_issue():
    for system, expected in {"stl": (False, 0, 0), "stl_aug": (True, 0, 0), "mtl_aug": (True, 1, 1)}.items():
        model, _ = bench_training.system_config(system)
        assert (model["augment"]["init_args"]["enabled"], model["reconstruction"]["init_args"]["weight"],
                model["aug_classification"]["init_args"]["weight"]) == expected
    assert bench_training.system_config("mtl_aug_unlabelled")[1]["use_unlabelled"] is True


def test_training_throughput_quick():
    res = bench_training.measure_training(batch_size=2, seconds=0.2, rounds=1, warmup=0)
    assert set(res["systems"]) == set(bench_training.SYSTEMS)
    assert res["systems"]["stl"]["ratio"] == 1.0
    assert res["systems"]["mtl_aug_unlabelled"]["rows_per_step"] == 4
    assert all(r["labelled_utt_per_s"] > 0 for r in res["systems"].values())


def test_candidates_quick():
    res = bench_training.measure_candidates(batch_size=2, seconds=0.2, rounds=1, warmup=0, compile_=False)
    assert {"mtl_aug", "stl", "mtl_aug+groupnorm_two_pass", "mtl_aug+speed_crop"} <= set(res["variants"])


def test_encoder_groupnorm_matches_the_former_two_pass_form():
    import torch

    from mtl_aug.encoder import ConvEncoder

    torch.manual_seed(0)
    a, b = ConvEncoder(norm="group").eval(), ConvEncoder(norm="group").eval()
    b.load_state_dict(a.state_dict())
    assert bench_training.groupnorm_two_pass(b) == len(b.blocks)
    feats, lengths = torch.randn(3, 40, 64), torch.tensor([40, 31, 17])
    za, zb = a(feats, lengths)[0], b(feats, lengths)[0]
    assert torch.allclose(za, zb, atol=1e-5)
    za.square().sum().backward()
    zb.square().sum().backward()
    for pa, pb in zip(a.parameters(), b.parameters()):
        assert (pa.grad - pb.grad).abs().max() <= 1e-5 * pa.grad.abs().max()  # float32 rounding only


def test_allocator_child_and_opt_out(monkeypatch):
    import mtl_aug.allocator as module

    res = bench_training._allocator_child(0.2, 2, 1, tuned=False)
    assert res["tuned"] is False and {"step_s", "faults_per_step"} <= set(res["mtl_aug"])
    monkeypatch.setattr(module, "_ALLOCATOR_TUNED", False)
    monkeypatch.setenv("MTL_AUG_MALLOC_TUNING", "0")
    assert module.tune_cpu_allocator() is False


def test_train_step_runs_the_real_training_step():
    step = bench_training.step_for("mtl_aug", 2, 0.2)
    before = [p.detach().clone() for p in step.module.parameters()]
    loss = step()
    assert loss == loss  # not NaN
    assert any(not b.equal(p) for b, p in zip(before, step.module.parameters()))  # the optimizer stepped


def test_frontend_augment_and_speed_variants_quick():
    fa = bench_data.measure_frontend_augment(batch_size=2, seconds=0.2, rounds=1, warmup=0)
    assert {"front_end", "speed", "specaug", "mixup", "policy", "front_end_before"} <= set(fa["parts"])
    assert set(fa["speedups"]) == {"front_end_power"}
    sv = bench_data.measure_speed_variants(batch_size=2, seconds=0.2, rounds=1, warmup=0)
    assert len(sv["variants"]) == 3


def test_data_wait_in_a_real_fit(corpus, tmp_path):
    res = bench_data.measure_data_wait(corpus, num_workers=0, max_epochs=1, limit_train_batches=2,
                                       extra=["--data.batch_size=2", "--data.segment_seconds=0.2"], out_dir=tmp_path)
    assert res["batches"] == 2 and res["num_workers"] == 0
    assert 0.0 <= res["wait_share_all"] < 1.0


def test_wait_stats_definitions():
    rows = [{"epoch": 0, "batch": 0, "wait": 1.0, "compute": 1.0}, {"epoch": 0, "batch": 1, "wait": 0.0, "compute": 2.0},
            {"epoch": 1, "batch": 0, "wait": 0.5, "compute": 1.5}]
    s = bench_data.wait_stats(rows)
    assert s["wait_share_all"] == pytest.approx(1.5 / 6.0)
    assert s["wait_share_steady"] == 0.0
    assert s["wait_share_after_first_epoch"] == pytest.approx(0.25)


def test_peak_rss_of_a_child_and_train_command(corpus, tmp_path):
    res = bench_data.peak_rss_of([sys.executable, "-c", "x = bytearray(60_000_000); x[::4096] = b'1' * len(x[::4096])"])
    assert res["exit_code"] == 0 and res["peak_rss_mb"] > 50
    cmd = bench_data.train_command(corpus, "mtl_aug", tmp_path, limit_train_batches=2)
    assert cmd[1:4] == ["-m", "mtl_aug", "train"] and "--trainer.limit_train_batches=2" in cmd


def test_inference_rtf_is_reused_from_bench_inference():
    import torch

    from bench_inference import measure_rtf

    from mtl_aug.tasks import MTLAugModule

    res = measure_rtf(MTLAugModule.from_flat(), seconds=0.5, repeats=1, backends=("eager",))
    assert res["eager"]["rtf"] > 0 and torch.get_num_threads() >= 1


def test_cv_helpers_and_report(corpus, tmp_path):
    setup = bench_cv.measure_data_setup("synthetic", [corpus["fold"]], corpus["manifest_dir"], root=corpus["root"],
                                        base_dir=tmp_path / "setup")
    assert setup["cold_s"] > 0 and setup["warm_s"] > 0 and setup["folds"] == 1
    est = bench_cv.estimate(wall_s=100.0, per_fold=[80.0], n_total=10)
    assert est["estimated"] and est["minutes_10_folds"] == pytest.approx((20 + 800) / 60, abs=0.01)
    est = bench_cv.estimate(wall_s=100.0, per_fold=[80.0], n_total=10, epochs=[20], max_epochs=40)
    assert est["per_epoch_s"] == 4.0 and est["minutes_10_folds_at_max_epochs"] == pytest.approx((20 + 1600) / 60, abs=0.01)
    cmd = bench_cv.cv_command("emodb", "mtl_aug", "1", tmp_path / "out", tmp_path / "cache", folds="03")
    assert cmd[cmd.index("--folds") + 1] == "03" and f"--data.cache_dir={tmp_path / 'cache'}" in cmd


def test_report_files(tmp_path):
    res = {"provenance": common.provenance(), "mode": "quick",
           "training": bench_training.measure_training(batch_size=2, seconds=0.2, rounds=1, warmup=0),
           "data_wait": {"0": {"corpus": "synthetic", "fold": "F01", "system": "mtl_aug", "batch_size": 4, "epochs": 1,
                               "threads": 1, "wait_share_all": 0.01}},
           "default_num_workers": 0, "inference": {"seconds": 10, "repeats": 1, "eager": {"median_s": 0.05, "rtf": 0.005}},
           "cv": {"minutes_10_folds": 12.0, "estimated": True, "folds_run": 1, "n_folds_total": 10,
                  "data_setup": {"cold_s": 10.0, "warm_s": 1.0}}}
    common.write_results(res, tmp_path / "b.json", tmp_path / "b.md")
    assert json.loads((tmp_path / "b.json").read_text())["mode"] == "quick"
    md = (tmp_path / "b.md").read_text()
    assert "Targets" in md and "Training throughput" in md and "estimate" in md
    assert set(common.evaluate_targets(res)) == set(common.TARGETS)
