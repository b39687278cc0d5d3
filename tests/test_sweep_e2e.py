"""End to end: ``python -m mtl_aug sweep experiments/sweeps/smoke.yaml`` on the synthetic corpus, in two
steps (``--count 1``, then ``--count 2``: the second run resumes without redoing the first trial)."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from mtl_aug.sweep import wandb_offline

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_smoke_sweep_runs_resumes_and_ranks(synthetic_corpus, tmp_path):
    # the real smoke YAML, pointed at this session's synthetic corpus (manifests and cache in tmp)
    cfg = yaml.safe_load((REPO / "experiments" / "sweeps" / "smoke.yaml").read_text())
    at = cfg["command"].index("${args}")
    cfg["command"][at:at] = [f"--data.manifest_dir={synthetic_corpus['manifest_dir']}",
                             f"--data.cache_dir={synthetic_corpus['cache_dir']}"]
    sweep_yaml = tmp_path / "smoke.yaml"
    sweep_yaml.write_text(yaml.safe_dump(cfg, sort_keys=False))
    out = tmp_path / "out"
    env = {**synthetic_corpus["env"], "PYTHONWARNINGS": "ignore"}
    env.pop("WANDB_MODE", None)

    def sweep(count: int) -> str:
        proc = subprocess.run([sys.executable, "-m", "mtl_aug", "sweep", str(sweep_yaml), "--count", str(count),
                               "--out", str(out), "--threads", "1"], cwd=REPO, env=env, capture_output=True,
                              text=True, timeout=300)
        assert proc.returncode == 0, proc.stdout + proc.stderr + _logs(out)
        return proc.stdout

    first = sweep(1)
    assert "[1/1] model.center_lambda=0.01 model.w_recon=0.5 ... val_uar_mean=" in first
    second = sweep(2)
    assert "[1/2]" in second and "done before: skipped" in second
    assert "[2/2] model.center_lambda=0.01 model.w_recon=2.0 ... val_uar_mean=" in second

    state = json.loads((out / "state.json").read_text())
    assert [t["params"]["model.w_recon"] for t in state["trials"]] == [0.5, 2.0]
    assert all(t["status"] == "ok" and 0.0 <= t["metric"] <= 1.0 for t in state["trials"])
    with (out / "leaderboard.csv").open() as f:
        board = list(csv.DictReader(f))
    assert len(board) == 2 and board[0]["rank"] == "1"
    assert float(board[0]["val_uar_mean"]) >= float(board[1]["val_uar_mean"])
    assert "Best flags: `--model.center_lambda=0.01 --model.w_recon=" in (out / "leaderboard.md").read_text()

    for t in state["trials"]:
        trial_dir = out / "trials" / f"{t['trial']:03d}"
        result = json.loads((trial_dir / "result.json").read_text())
        assert list(result["folds"]) == ["F01", "F03"]  # one run per dev fold, mean over them
        assert result["val_uar_mean"] == pytest.approx(sum(result["folds"].values()) / 2)
        for fold in ("F01", "F03"):  # the dev folds' test speakers were never evaluated
            fold_result = json.loads((trial_dir / f"fold_{fold}" / "version_0" / "results.json").read_text())
            assert "uar" not in fold_result and "confusion" not in fold_result
            header = (trial_dir / f"fold_{fold}" / "version_0" / "metrics.csv").read_text().splitlines()[0]
            assert "val/uar" in header and "test/" not in header
        # the trial's offline W&B run, grouped by the sweep's name, val_uar_mean logged exactly once
        (run_dir,) = wandb_offline.offline_runs(trial_dir / "wandb")
        info = wandb_offline.run_info(run_dir)
        assert info["group"] == "smoke" and info["id"] == t["wandb_run"]
        logged = [r["val_uar_mean"] for r in wandb_offline.history(run_dir) if "val_uar_mean" in r]
        assert logged == [pytest.approx(t["metric"])]


def _logs(out: Path) -> str:
    return "".join(f"\n--- {p}\n" + "\n".join(p.read_text().splitlines()[-30:])
                   for p in sorted(out.glob("trials/*/log.txt")))
