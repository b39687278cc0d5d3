"""``python -m mtl_aug adversarial``: UAR under FGSM and PGD waveform attacks of a given SNR.

    python -m mtl_aug adversarial --corpus emodb --system mtl_aug --seeds 3 [--snrs 40,30,20] [--pgd-steps 10]

The models are the system's cross-validation models (the best checkpoint of each fold x seed, trained
first when the cv run has not finished, as for ``noise``). The attacks run on the waveform through
the differentiable front end (the model's network, ``model.network``, in eval mode: no augmentation, no dropout),
untargeted, against the true labels; the perturbation's size is an SNR in dB relative to each
utterance's RMS, padding is never perturbed. Exact definitions: :mod:`mtl_aug.evaluation.attacks`
(FGSM: RMS(δ) = RMS(x)·10^(−SNR/20) exactly; PGD: L∞ ball of radius ε = RMS(x)·10^(−SNR/20), random
start, α = 2.5ε/steps, so its SNR is ≥ the nominal one).

Outputs: ``<results-dir>/<system>/adversarial/`` (per-run JSON, summary.json/md, predictions.csv) and
over every system found: ``<results-dir>/adversarial.md`` + ``adversarial.png``. ``--system`` may also be
a cv result folder, as for ``noise``.
"""

from __future__ import annotations

import argparse
import zlib
from pathlib import Path
from typing import Sequence

from mtl_aug import tables
from mtl_aug.io import atomic_write_text
from mtl_aug.network import IN_GRAPH_FUNCTIONALS
from mtl_aug.provenance import provenance
from mtl_aug.recipes import BASELINE_SYSTEMS

from . import aggregate, attacks, plots, robustness, runs, shell
from .robustness import RobustnessSetting, checkpoint_runs, dry_run_eval, evaluate_checkpoints, predict_test
from .robustness_tables import CLEAN, by_protocol, collect, protocol_line, seeds_label, system_report


def condition(attack: str, snr: float) -> str:
    return f"{attack} {snr:g} dB"


def conditions_for(attack_names: Sequence[str], snrs: Sequence[float]) -> list[str]:
    return [CLEAN] + [condition(a, s) for a in attack_names for s in snrs]


def attack_batch(model, batch: dict, attack: str, snr: float, pgd_steps: int):
    net = model.network  # the one forward path (a group-normalised network keeps its groups' statistics fixed)
    groups = net.groups(batch)

    def forward(wave, lengths):
        return net(wave, lengths, groups=groups)

    labels = batch["label"]
    if attack == "fgsm":
        return attacks.fgsm(forward, batch["wave"], batch["lengths"], labels, snr)
    seed = zlib.crc32("\x1f".join(batch["key"]).encode()) ^ int(snr * 1000)  # random start fixed per batch
    return attacks.pgd(forward, batch["wave"], batch["lengths"], labels, snr, steps=pgd_steps, seed=seed)


def write_combined(results_dir: Path, attack_names: Sequence[str], snrs: Sequence[float], corpus: str) -> dict:
    summaries = collect(results_dir, "adversarial")
    if not summaries:
        return summaries
    header = ["system", "seeds", "attack", "clean", *(f"{s:g} dB" for s in snrs)]
    title = f"UAR under waveform attacks on {corpus}"
    md = [f"## {title}", ""]
    for protocol, group in by_protocol(summaries):
        rows = [[system, seeds_label(s), a.upper(), aggregate.fmt_pct(s["conditions"][CLEAN]["uar"]),
                 *(aggregate.fmt_pct(s["conditions"].get(condition(a, snr), {}).get("uar")) for snr in snrs)]
                for system, s in group.items() for a in attack_names]
        md += [protocol_line(protocol, "Perturbation size as SNR relative to each utterance (higher dB = weaker "
                                       "attack)."), "", tables.markdown_table(header, rows), ""]
    atomic_write_text(Path(results_dir) / "adversarial.md", "\n".join(md))
    xs = [CLEAN] + [f"{s:g} dB" for s in snrs]
    series = {}
    for system, s in summaries.items():
        c = s["conditions"]
        for a in attack_names:
            pts = {CLEAN: (c[CLEAN]["uar"]["mean"], c[CLEAN]["uar"]["std"])}
            pts.update({f"{snr:g} dB": (c[condition(a, snr)]["uar"]["mean"], c[condition(a, snr)]["uar"]["std"])
                        for snr in snrs if condition(a, snr) in c})
            series[f"{system} {a.upper()}"] = pts
    plots.lines_png(series, xs, Path(results_dir) / "adversarial.png", xlabel="perturbation SNR", title=title)
    return summaries


def run_adversarial(corpus: str, system: str, seeds: list[int], folds: str | None = None,
                    snrs: Sequence[float] = (40, 30, 20), attack_names: Sequence[str] = ("fgsm", "pgd"),
                    pgd_steps: int = 10, results_dir: str | Path | None = None, max_epochs: int | None = None,
                    extra: Sequence[str] = (), manifest_dir: str = "data_manifests", force: bool = False,
                    meta: dict | None = None, dry_run: bool = False, normalize: str = "utterance") -> dict:
    from .cv import protocol_name

    if system in BASELINE_SYSTEMS:
        raise SystemExit(f"adversarial: {system} is an openSMILE + SVM baseline, which has no gradient with respect "
                         "to the waveform to attack through; adversarial evaluates the neural systems only")
    src = checkpoint_runs(corpus, system, seeds, folds, results_dir, max_epochs, extra, manifest_dir, normalize)
    if dry_run:
        return dry_run_eval(src.runs, src.system_dir / "adversarial", force)
    label, normalize, manifest_dir = src.label, src.normalize, src.manifest_dir
    conditions = conditions_for(attack_names, snrs)

    def evaluate(model, dm, group_norm):
        fused = getattr(getattr(model, "network", None), "functionals", None)
        if fused and fused not in IN_GRAPH_FUNCTIONALS:
            raise SystemExit(f"adversarial: {system} fuses utterance features ({model.network.functionals}), computed "
                             "outside the network's graph with no gradient with respect to the waveform: an attack through the network alone would overstate its robustness")
        model.requires_grad_(False)  # gradients w.r.t. the waveform only
        # A group-normalised model keeps the statistics of the clean audio: the speaker was enrolled before
        # the attack, and the attack differentiates through the fixed normalisation.
        if group_norm is not None:
            group_norm.use(None)
        out = {CLEAN: predict_test(model, dm)}
        for a in attack_names:
            for snr in snrs:
                out[condition(a, snr)] = predict_test(
                    model, dm, lambda b, a=a, s=snr: attack_batch(model, b, a, s, pgd_steps))
        return out

    out = src.system_dir / "adversarial"
    settings = {"attacks": list(attack_names), "snrs": list(snrs), "pgd_steps": pgd_steps}
    results = evaluate_checkpoints(src.runs, out, conditions, evaluate, f"adversarial {corpus}/{label}", force,
                                   {"pgd_steps": pgd_steps})
    meta = meta or provenance("adversarial", ["--corpus", corpus, "--system", system])
    protocol = (f"{protocol_name(corpus, len(src.folds), manifest_dir, results[0].get('class_names'))}; "
                f"untargeted FGSM / PGD-{pgd_steps} (L∞, ε = RMS(x)·10^(−SNR/20)) on the waveform, true labels")
    if normalize != "utterance":
        protocol += f"; {normalize}-level log-mel normalisation with the statistics of the clean (enrolment) audio"
    summary = system_report(out, results, conditions, meta | settings | {"normalize": normalize},
                            f"{label} on {corpus} under adversarial attacks", protocol)
    write_combined(src.results_dir, attack_names, snrs, corpus)
    return summary | {"system": label, "results_dir": str(src.results_dir)}


class Adversarial(RobustnessSetting):
    name, doc = "adversarial", __doc__
    snrs, snrs_help = "40,30,20", "perturbation SNRs in dB"

    def add_arguments(self, p: argparse.ArgumentParser) -> None:
        super().add_arguments(p)
        p.add_argument("--attacks", default="fgsm,pgd")
        p.add_argument("--pgd-steps", type=int, default=10)

    def check(self, a: argparse.Namespace) -> None:
        a.attack_names = [n.strip().lower() for n in a.attacks.split(",") if n.strip()]
        unknown = [n for n in a.attack_names if n not in attacks.ATTACKS]
        if unknown:
            raise SystemExit(f"unknown attacks {unknown}; one of {sorted(attacks.ATTACKS)}")

    def run(self, a: argparse.Namespace, system: str, extra: Sequence[str], meta: dict) -> dict:
        return run_adversarial(a.corpus, system, runs.parse_seeds(a.seeds), a.folds, robustness.parse_snrs(a.snrs),
                               a.attack_names, a.pgd_steps, a.results_dir, a.max_epochs, extra, a.manifest_dir,
                               a.force, meta, a.dry_run, a.normalize)


SETTING = Adversarial()


def main(argv: list[str]) -> int:
    return shell.main(SETTING, argv)
