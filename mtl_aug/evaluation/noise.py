"""``python -m mtl_aug noise``: UAR on the test utterances mixed with real noise at 20, 10 and 0 dB SNR.

    python -m mtl_aug noise --corpus emodb --system mtl_aug --seeds 3

Protocol (docs/protocols.md, setting 3): the models are the cross-validation models of the system
(trained on clean speech): the best checkpoint of ``<results-dir>/<system>/runs/<fold>_s<seed>`` is
reused when that cv run has finished, otherwise the run is trained first, exactly as ``cv`` would
(so a later ``cv`` skips it). Each test utterance is mixed with ``NoiseBank(split="eval")`` noise —
the second half of each real noise file, file and offset chosen deterministically from (utterance
key, SNR), gain set for an exact SNR by RMS over the utterance (``mtl_aug.data.noise``). Noise:
DEMAND when ``<manifest-dir>/demand`` exists, else the real Speech Commands background recordings.

``--normalize speaker|corpus`` evaluates the cv models of that normalisation (``<system>_<mode>norm``):
clean with the statistics they were tested with, and at each SNR with each test speaker's statistics
recomputed from its noisy test audio — the speaker is enrolled in the noise it is then heard in.

Outputs: ``<results-dir>/<system>/noise/`` (per-run JSON with the checkpoint path, ``summary.json``,
``summary.md``, ``predictions.csv``) and, over every system with noise results in ``<results-dir>``,
``<results-dir>/noise.md`` and ``<results-dir>/noise.png`` (UAR vs SNR, one line per system).

``--system`` may also be a cv result folder (any ``cv --out``, e.g. MTL-AUG trained with tuned loss
weights): its models, named after the folder, results in ``<folder>/noise/``, the combined table next to
the folder (:func:`.robustness.from_cv_folder`).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Sequence

from mtl_aug import tables
from mtl_aug.io import atomic_write_text
from mtl_aug.provenance import provenance

from . import plots, robustness, runs, shell
from .robustness import RobustnessSetting, checkpoint_runs, dry_run_eval, evaluate_checkpoints, predict_test
from .robustness_tables import CLEAN, by_protocol, collect, condition_table, protocol_line, system_report

def snr_label(snr: float) -> str:
    return f"{snr:g} dB"


def noise_source(manifest_dir: str | Path, choice: str = "auto") -> str:
    if choice != "auto":
        return choice
    return "demand" if (Path(manifest_dir) / "demand" / "manifest.csv").exists() else "speech_commands"


def make_bank(name: str, manifest_dir: str | Path, sample_rate: int):
    from mtl_aug.data.manifest import read_manifest
    from mtl_aug.data.noise import NoiseBank
    from mtl_aug.data.roots import resolve_root

    manifest = Path(manifest_dir) / name / "manifest.csv"
    if not manifest.exists():
        raise SystemExit(f"no noise manifest at {manifest}: run `python -m mtl_aug prepare {name}` first")
    return NoiseBank(read_manifest(manifest), resolve_root(name), split="eval", sample_rate=sample_rate)


def mix_batch(bank, batch: dict, snr: float):
    """Each row's valid samples mixed with its (key, SNR) noise at exactly ``snr`` dB; padding stays 0."""
    wave = batch["wave"].clone()
    for i, (key, n) in enumerate(zip(batch["key"], batch["lengths"].tolist())):
        wave[i, :n] = bank.mix(key, batch["wave"][i, :n], snr)
    return wave


def write_combined(results_dir: Path, kind: str, conditions: Sequence[str], title: str, xlabel: str,
                   xs: Sequence[str] | None = None, labels: Sequence[str] | None = None) -> dict[str, dict]:
    """``<results_dir>/<kind>.md`` + ``.png`` over every system with ``<kind>`` results."""
    summaries = collect(results_dir, kind)
    if not summaries:
        return summaries
    header = ["system", "seeds", *(labels or conditions)]
    md = [f"## {title}", ""]
    for protocol, group in by_protocol(summaries):
        md += [protocol_line(protocol), "", tables.markdown_table(header, condition_table(group, conditions)), "",
               "Pooled UAR (all folds' predictions per seed):", "",
               tables.markdown_table(header, condition_table(group, conditions, "pooled_uar")), ""]
    atomic_write_text(Path(results_dir) / f"{kind}.md", "\n".join(md))
    series = {system: {c: (s["conditions"][c]["uar"]["mean"], s["conditions"][c]["uar"]["std"])
                       for c in conditions if c in s["conditions"]} for system, s in summaries.items()}
    plots.lines_png(series, list(xs or conditions), Path(results_dir) / f"{kind}.png", xlabel=xlabel, title=title)
    return summaries



def run_noise(corpus: str, system: str, seeds: list[int], folds: str | None = None, snrs: Sequence[float] = (20, 10, 0),
              noise: str = "auto", results_dir: str | Path | None = None, max_epochs: int | None = None,
              extra: Sequence[str] = (), manifest_dir: str = "data_manifests", force: bool = False,
              meta: dict | None = None, dry_run: bool = False, normalize: str = "utterance") -> dict:
    from .cv import protocol_name

    src = checkpoint_runs(corpus, system, seeds, folds, results_dir, max_epochs, extra, manifest_dir, normalize)
    if dry_run:
        return dry_run_eval(src.runs, src.system_dir / "noise", force)
    label, normalize, manifest_dir = src.label, src.normalize, src.manifest_dir
    source = noise_source(manifest_dir, noise)
    conditions = [CLEAN] + [snr_label(s) for s in snrs]
    banks: dict[int, object] = {}

    def evaluate(model, dm, group_norm):
        sr = int(dm.hparams.sample_rate)
        if sr not in banks:
            banks[sr] = make_bank(source, manifest_dir, sr)

        def predict(perturb=None):
            if group_norm is not None:
                group_norm.use(perturb)  # the test speakers' statistics over the audio as it is heard
            return predict_test(model, dm, perturb)

        out = {CLEAN: predict()}
        for snr in snrs:
            out[snr_label(snr)] = predict(lambda b, s=snr: mix_batch(banks[sr], b, s))
        return out

    out = src.system_dir / "noise"
    results = evaluate_checkpoints(src.runs, out, conditions, evaluate, f"noise {corpus}/{label}", force,
                                   {"noise": source})
    meta = meta or provenance("noise", ["--corpus", corpus, "--system", system])
    protocol = (f"{protocol_name(corpus, len(src.folds), manifest_dir, results[0].get('class_names'))}; trained on "
                "clean speech, test utterances "
                f"mixed with real noise ({source}, evaluation half of each file) at exact SNR")
    if normalize != "utterance":
        protocol += (f"; {normalize}-level log-mel normalisation, each test {normalize}'s statistics recomputed "
                     "from its noisy test audio (enrolled in the noise it is heard in)")
    summary = system_report(out, results, conditions, meta | {"noise": source, "normalize": normalize},
                            f"{label} on {corpus} under noise", protocol)
    write_combined(src.results_dir, "noise", conditions, f"UAR vs SNR on {corpus} ({source} noise)", "SNR")
    return summary | {"system": label, "results_dir": str(src.results_dir)}


class Noise(RobustnessSetting):
    name, doc = "noise", __doc__
    snrs, snrs_help = "20,10,0", "comma-separated SNRs in dB"

    def add_arguments(self, p: argparse.ArgumentParser) -> None:
        super().add_arguments(p)
        p.add_argument("--noise", default="auto", choices=["auto", "demand", "speech_commands"])

    def run(self, a: argparse.Namespace, system: str, extra: Sequence[str], meta: dict) -> dict:
        return run_noise(a.corpus, system, runs.parse_seeds(a.seeds), a.folds, robustness.parse_snrs(a.snrs), a.noise,
                         a.results_dir, a.max_epochs, extra, a.manifest_dir, a.force, meta, a.dry_run, a.normalize)


SETTING = Noise()


def main(argv: list[str]) -> int:
    return shell.main(SETTING, argv)
