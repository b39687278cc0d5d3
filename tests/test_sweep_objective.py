"""The sweep objective: flags per dev fold, mean validation UAR, one wandb.log of val_uar_mean (checked
in a real offline W&B run), the result file; training itself is stubbed here (see test_sweep_e2e.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mtl_aug.sweep import objective, wandb_offline


def test_configs_go_first_and_each_fold_gets_its_own_flags(tmp_path):
    argv = ["--model.w_recon=0.5", "--base-config=a.yaml", "--config=c.yaml", "--dev-folds=03,08",
            "--base-config=b.yaml", "-c", "d.yaml", "--trainer.max_epochs=3"]
    opts, common = objective.parse(argv)
    assert opts.folds == ["03", "08"]
    # jsonargparse: a --config after a flag would override it, and W&B does not promise the order of ${args}
    assert common == ["--config=a.yaml", "--config=b.yaml", "--config=c.yaml", "--config=d.yaml",
                      "--model.w_recon=0.5", "--trainer.max_epochs=3"]
    args = objective.fold_args(common, "08", tmp_path)
    assert args[:len(common)] == common and "--data.fold=08" in args
    logger = json.loads(next(a for a in args if a.startswith("--trainer.logger=")).split("=", 1)[1])
    assert logger["class_path"].endswith("CSVLogger") and logger["init_args"]["name"] == "fold_08"


@pytest.mark.parametrize("argv", [["--dev-folds=03", "--data.fold=03"], ["--dev-folds=,"], ["--dev-folds=03,03"]])
def test_bad_fold_flags_are_refused(argv):
    with pytest.raises(SystemExit):
        objective.parse(argv)


def test_wandb_is_active_only_under_an_agent_or_with_a_mode(monkeypatch):
    opts, _ = objective.parse(["--dev-folds=03"])
    for var in ("WANDB_MODE", "WANDB_SWEEP_ID"):
        monkeypatch.delenv(var, raising=False)
    assert not objective.wandb_active(opts)
    monkeypatch.setenv("WANDB_MODE", "offline")
    assert objective.wandb_active(opts)
    monkeypatch.setenv("WANDB_MODE", "disabled")
    assert not objective.wandb_active(opts)
    monkeypatch.setenv("WANDB_SWEEP_ID", "abc")
    assert objective.wandb_active(opts)
    opts, _ = objective.parse(["--dev-folds=03", "--no-wandb"])
    assert not objective.wandb_active(opts)


def test_mean_validation_uar_is_logged_once_and_written(tmp_path, monkeypatch):
    scores = {"03": 0.5, "08": 0.7, "09": 0.6}
    seen = []

    def fake_train_fold(args, keep_checkpoints):
        fold = next(a for a in args if a.startswith("--data.fold=")).split("=", 1)[1]
        seen.append(args)
        return scores[fold], {"fold": fold, "epochs": 4, "fold_info": {"val": [f"v{fold}"]}}, True

    monkeypatch.setattr(objective, "train_fold", fake_train_fold)
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_DIR", str(tmp_path))
    monkeypatch.setenv("WANDB_RUN_GROUP", "mysweep")
    monkeypatch.setenv("WANDB_SILENT", "true")
    monkeypatch.delenv("WANDB_SWEEP_ID", raising=False)
    result = tmp_path / "result.json"
    monkeypatch.setenv(objective.RESULT_ENV, str(result))
    assert objective.main(["--dev-folds=03,08,09", "--base-config=experiments/base.yaml", "--model.w_aug=0.3",
                           "--out", str(tmp_path / "trial")]) == 0
    assert len(seen) == 3 and all("--model.w_aug=0.3" in a for a in seen)
    out = json.loads(result.read_text())
    assert out["val_uar_mean"] == pytest.approx(0.6)
    assert out["val_uar_std"] == pytest.approx(0.1)
    assert out["folds"] == scores and out["val_speakers"] == {"03": ["v03"], "08": ["v08"], "09": ["v09"]}
    # the offline W&B run: grouped by the sweep, val_uar_mean logged exactly once, the flags in its config
    (run_dir,) = wandb_offline.offline_runs(tmp_path / "wandb")
    rows = [r for r in wandb_offline.history(run_dir) if objective.METRIC in r]
    assert len(rows) == 1 and rows[0][objective.METRIC] == pytest.approx(0.6)
    assert rows[0]["val_uar/08"] == pytest.approx(0.7)
    info = wandb_offline.run_info(run_dir)
    assert info["group"] == "mysweep" and info["config"]["model.w_aug"] == 0.3
    assert out["wandb"]["id"] == info["id"]


def test_without_wandb_only_the_result_file(tmp_path, monkeypatch):
    monkeypatch.setattr(objective, "train_fold", lambda args, keep: (0.4, {"epochs": 1}, True))
    monkeypatch.delenv("WANDB_MODE", raising=False)
    monkeypatch.delenv("WANDB_SWEEP_ID", raising=False)
    monkeypatch.chdir(tmp_path)
    assert objective.main(["--dev-folds=03", "--result", "r.json", "--out", "o"]) == 0
    assert json.loads(Path("r.json").read_text())["val_uar_mean"] == pytest.approx(0.4)
    assert not Path("wandb").exists()


def test_check_mode_parses_the_flags_and_knows_the_folds(capsys):
    base = ["--base-config=experiments/base.yaml", "--base-config=experiments/corpora/synthetic.yaml"]
    assert objective.main([*base, "--dev-folds=F01", "--model.w_recon=0.2", "--check"]) == 0
    assert objective.main([*base, "--dev-folds=F01", "--model.w_recon=oops", "--check"]) == 1
    assert "model.w_recon" in capsys.readouterr().err
    resolved = objective.check_cli_args(["--config=experiments/base.yaml", "--data.corpus=synthetic",
                                         "--data.manifest_dir=nowhere"])
    assert objective.check_dev_folds(resolved, ["F01"]) is False  # corpus not prepared: nothing to check


def test_unknown_dev_fold_is_reported(tmp_path):
    d = tmp_path / "toy"
    d.mkdir()
    (d / "folds.json").write_text(json.dumps({"corpus": "toy", "protocol": "LOSO", "folds": [{"name": "a"}, {"name": "b"}]}))
    resolved = {"data": {"corpus": "toy", "manifest_dir": str(tmp_path)}}
    assert objective.check_dev_folds(resolved, ["a", "b"]) is True
    with pytest.raises(ValueError, match="c"):
        objective.check_dev_folds(resolved, ["a", "c"])


@pytest.mark.parametrize("trainer,multi", [({"devices": 1}, False), ({"devices": 2}, True), ({"devices": "0,1"}, True),
                                           ({"devices": [0]}, False), ({"devices": 1, "num_nodes": 2}, True),
                                           ({"devices": "auto", "accelerator": "cpu"}, False)])
def test_multi_process_trainers_are_detected(trainer, multi):
    assert objective.multi_process({"trainer": trainer}) is multi


def test_separate_fold_processes(tmp_path, monkeypatch):
    """--fold-processes=always (auto under DDP): each dev fold is `python -m mtl_aug.sweep.objective
    --dev-folds=<fold>` in a child, so every DDP launch starts clean; the parent averages and logs."""
    calls = []

    def fake_call(cmd, env):
        calls.append(cmd)
        fold = next(a for a in cmd if a.startswith("--dev-folds=")).split("=", 1)[1]
        result = Path(next(a for a in cmd if a.startswith("--result=")).split("=", 1)[1])
        result.write_text(json.dumps({"folds": {fold: {"03": 0.2, "08": 0.4}[fold]}, "epochs": {fold: 3},
                                      "val_speakers": {fold: ["x"]}}))
        assert objective.RESULT_ENV not in env
        return 0

    monkeypatch.setattr("subprocess.call", fake_call)
    monkeypatch.setenv(objective.RESULT_ENV, str(tmp_path / "r.json"))
    assert objective.main(["--dev-folds=03,08", "--base-config=b.yaml", "--model.w_aug=0.3", "--no-wandb",
                           "--fold-processes=always", "--out", str(tmp_path)]) == 0
    assert json.loads((tmp_path / "r.json").read_text())["val_uar_mean"] == pytest.approx(0.3)
    assert len(calls) == 2
    child = calls[0]
    assert child[1:3] == ["-m", "mtl_aug.sweep.objective"] and "--fold-processes=never" in child
    assert "--no-wandb" in child and child[-2:] == ["--config=b.yaml", "--model.w_aug=0.3"]


def test_a_failed_trial_marks_its_wandb_run_failed(tmp_path, monkeypatch):
    def boom(args, keep):
        raise RuntimeError("out of memory")

    monkeypatch.setattr(objective, "train_fold", boom)
    for k, v in {"WANDB_MODE": "offline", "WANDB_DIR": str(tmp_path), "WANDB_SILENT": "true"}.items():
        monkeypatch.setenv(k, v)
    monkeypatch.delenv("WANDB_SWEEP_ID", raising=False)
    with pytest.raises(RuntimeError, match="out of memory"):
        objective.main(["--dev-folds=03", "--out", str(tmp_path / "t"), "--result", str(tmp_path / "r.json")])
    assert not (tmp_path / "r.json").exists()
    (run_dir,) = wandb_offline.offline_runs(tmp_path / "wandb")
    exits = [r.exit.exit_code for r in wandb_offline.records(wandb_offline.run_file(run_dir))
             if r.WhichOneof("record_type") == "exit"]
    assert exits == [1]
    assert not [r for r in wandb_offline.history(run_dir) if objective.METRIC in r]


def test_ddp_children_do_not_open_a_wandb_run(monkeypatch):
    monkeypatch.setenv("LOCAL_RANK", "1")
    assert not objective.rank_zero_env()
    monkeypatch.setenv("LOCAL_RANK", "0")
    assert objective.rank_zero_env()


def test_a_trial_that_trains_on_its_validation_speakers_is_refused(tmp_path, monkeypatch):
    with pytest.raises(ValueError, match="train_on_val"):
        objective.check_dev_folds({"data": {"corpus": "synthetic", "train_on_val": True}}, ["F01"])
    seen = []
    monkeypatch.setattr(objective, "train_fold", lambda args, keep: (seen.append(args) or 0.9, {
        "epochs": 1, "fold_info": {"val": ["F02"], "train_on_val": True}}, True))
    monkeypatch.delenv("WANDB_MODE", raising=False)
    monkeypatch.delenv("WANDB_SWEEP_ID", raising=False)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ValueError, match="dev fold 03: trained with --data.train_on_val"):
        objective.main(["--dev-folds=03,08", "--result", "r.json", "--out", "o"])
    assert len(seen) == 1 and not Path("r.json").exists()
