"""End to end through the command line: LightningCLI parsing, train, and DDP (2 CPU processes, gloo).

DDP runs in subprocesses: two DDP fits in one pytest process fail with EADDRINUSE.
"""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
CONFIGS = ["--config", "experiments/base.yaml", "--config", "experiments/corpora/synthetic.yaml"]


def run(args: list[str], env: dict, timeout: int = 300) -> subprocess.CompletedProcess:
    env = {**env, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    proc = subprocess.run([sys.executable, "-m", "mtl_aug", *args], cwd=REPO, env=env, capture_output=True,
                          text=True, timeout=timeout)
    assert proc.returncode == 0, f"exit {proc.returncode}\nSTDOUT:\n{proc.stdout[-3000:]}\nSTDERR:\n{proc.stderr[-5000:]}"
    return proc


def data_flags(corpus: dict, tmp: Path) -> list[str]:
    return [f"--data.manifest_dir={corpus['manifest_dir']}", f"--data.root={corpus['root']}",
            f"--data.unlabelled_root={corpus['root']}", f"--data.cache_dir={corpus['cache_dir']}",
            f"--trainer.default_root_dir={tmp}", f"--trainer.logger.init_args.save_dir={tmp}",
            "--trainer.enable_progress_bar=false", "--data.fold=F01", "--data.batch_size=8"]


def test_help_lists_every_command():
    proc = subprocess.run([sys.executable, "-m", "mtl_aug", "--help"], cwd=REPO, capture_output=True, text=True)
    assert proc.returncode == 0
    for cmd in ("fit", "train", "prepare", "cv", "sweep", "export", "predict"):
        assert cmd in proc.stdout
    bad = subprocess.run([sys.executable, "-m", "mtl_aug", "nonsense"], cwd=REPO, capture_output=True, text=True)
    assert bad.returncode == 2 and "unknown command 'nonsense'" in bad.stderr


@pytest.mark.parametrize("system", ["stl", "stl_aug", "mtl_aug", "mtl_aug_unlabelled", "no_recon", "no_augcls"])
def test_every_system_config_parses(system, capsys, monkeypatch):
    from mtl_aug.training import make_cli

    monkeypatch.chdir(REPO)
    with pytest.raises(SystemExit) as exit_:
        make_cli([*CONFIGS, "--config", f"experiments/systems/{system}.yaml", "--print_config"], run=False)
    assert exit_.value.code in (0, None)
    out = capsys.readouterr().out
    assert "ReconstructionTask" in out and "AugmentationTask" in out and "ModelCheckpoint" in out


@pytest.mark.parametrize("corpus", sorted(p.stem for p in (REPO / "experiments" / "corpora").glob("*.yaml")))
def test_every_corpus_config_parses(corpus, capsys, monkeypatch):
    from mtl_aug.training import make_cli

    monkeypatch.chdir(REPO)
    with pytest.raises(SystemExit) as exit_:
        make_cli(["--config", "experiments/base.yaml", "--config", f"experiments/corpora/{corpus}.yaml",
                  "--config", "experiments/systems/mtl_aug.yaml", "--print_config"], run=False)
    assert exit_.value.code in (0, None)
    out = capsys.readouterr().out
    assert "label_map" in out and "corpus:" in out


def test_train_prints_fold_summary_and_writes_results(synthetic_corpus, tmp_path):
    proc = run(["train", *CONFIGS, "--config", "experiments/systems/mtl_aug_unlabelled.yaml",
                *data_flags(synthetic_corpus, tmp_path), "--trainer.max_epochs=2",
                "--trainer.limit_train_batches=3"], synthetic_corpus["env"])
    assert "fold F01: test UAR" in proc.stdout and "true \\ pred" in proc.stdout
    result = json.loads(next(tmp_path.rglob("results.json")).read_text())
    assert result["fold_info"]["test"] == ["F01"] and 0.0 <= result["uar"] <= 1.0
    assert len(result["predictions"]) == result["fold_info"]["n_test"] == 32
    assert Path(result["best_checkpoint"]).exists()


def _test_uar(log_root: Path, version: str) -> float:
    rows = list(csv.DictReader(open(next((log_root / "train" / version).rglob("metrics.csv")))))
    values = [float(r["test/uar"]) for r in rows if r.get("test/uar")]
    assert len(values) == 1
    return values[0]


@pytest.mark.slow
def test_ddp_two_processes_match_single_process(synthetic_corpus, tmp_path):
    """A DDP fit with unlabelled mixing runs; then one checkpoint tested with 1 and with 2 processes
    gives the same test UAR (metrics synced across ranks, no row duplicated by the sampler)."""
    env = synthetic_corpus["env"]
    ddp = ["--trainer.accelerator=cpu", "--trainer.strategy=ddp", "--trainer.devices=2"]
    run(["fit", *CONFIGS, "--config", "experiments/systems/mtl_aug_unlabelled.yaml",
         *data_flags(synthetic_corpus, tmp_path), *ddp, "--trainer.max_epochs=1",
         "--trainer.logger.init_args.version=fit"], env)
    ckpt = next((tmp_path / "train" / "fit").rglob("*.ckpt"))
    common = ["test", *CONFIGS, "--config", "experiments/systems/mtl_aug.yaml", *data_flags(synthetic_corpus, tmp_path),
              f"--ckpt_path={ckpt}"]
    run([*common, "--trainer.devices=1", "--trainer.logger.init_args.version=single"], env)
    run([*common, *ddp, "--trainer.logger.init_args.version=ddp"], env)
    single, distributed = _test_uar(tmp_path, "single"), _test_uar(tmp_path, "ddp")
    assert single == pytest.approx(distributed, abs=1e-6)
