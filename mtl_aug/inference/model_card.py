"""The model card of a release model (``python -m mtl_aug pretrained``): what it was trained on, how, its expected
accuracy (the cross-validated UAR of its recipe), its files and use, as JSON and Markdown."""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
from pathlib import Path
from typing import Sequence

from mtl_aug.inference.cv_summary import cv_result

CARD_JSON = "model_card.json"
CARD_MD = "MODEL_CARD.md"


def sha256_file(path: str | Path) -> str:
    h = hashlib.sha256()
    with Path(path).open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def protocol_text(corpus: str, fold_info: dict, epoch_chosen: bool = True) -> str:
    role = ("select the best epoch (validation UAR)" if epoch_chosen else
            "give the validation curve (the final averaged weights are the model: no epoch chosen)")
    val = ", ".join(map(str, fold_info.get("val", [])))
    if fold_info.get("train_on_val"):  # data.train_on_val: the validation speakers were trained on as well
        who = f"trained on every speaker, the first fold's validation speakers ({val}) included (data.train_on_val)"
        watched = "the validation curve is on training speakers"
    else:
        who = f"trained on all speakers except the validation speakers of the first fold ({val})"
        watched = f"{fold_info.get('n_val', '?')} validation utterances {role}"
    return (f"{corpus}: {who}; {fold_info.get('n_train', '?')} training utterances from "
            f"{len(fold_info.get('train', []))} speakers, {watched}. No test split: see the cross-validated UAR.")


def svm_protocol_text(corpus: str, result: dict) -> str:
    b = result["baseline"]
    return (f"{corpus}: {b['feature_set']} functionals + SVM fitted on every speaker ({b['n_fit']} utterances from "
            f"{len(b['fit_speakers'])} speakers, the validation speakers included: an SVM stops no training); kernel "
            f"{b['kernel']} and C {b['C']:g} chosen by speaker-grouped inner cross-validation. No test split: see the "
            "cross-validated UAR.")


def build_card(*, corpus: str, system: str, result: dict, config_text: str, args: list[str], ckpt: Path,
               manifest: Path, folds: Path, class_names: list[str], hparams: dict, results_dir: str | Path,
               max_epochs: int | None, seed: int, checkpoint_format=None,
               members: Sequence[tuple[int, Path, dict]] = ()) -> dict:
    """The model card. ``result``/``ckpt``/``seed``: the (first) model; ``members``: ``(seed, checkpoint, training
    result)`` of every member of a seed ensemble (empty for one model)."""
    import lightning
    import torch

    from mtl_aug import __version__
    from mtl_aug.provenance import git_commit, machine

    commit, dirty = git_commit()
    fold_info = result.get("fold_info") or {}
    baseline = "baseline" in result
    n = max(1, len(members))
    command = " ".join(["python -m mtl_aug pretrained", f"--corpus {corpus}", f"--system {system}"]
                       + ([f"--max-epochs {max_epochs}"] if max_epochs else []) + ([f"--seed {seed}"] if seed else [])
                       + ([f"--seeds {n}"] if n > 1 else []))
    card = {
        "name": f"mtl-aug {system} {corpus}",
        "corpus": corpus,
        "system": system,
        "class_names": class_names,
        "sample_rate": int(hparams.get("sample_rate", 16000)),
        "checkpoint": {"file": ckpt.name, "sha256": sha256_file(ckpt), "best_epoch_path": result.get("best_checkpoint"),
                       "mtl_aug_format": checkpoint_format},
        "data": {"manifest": str(manifest), "manifest_sha256": sha256_file(manifest),
                 "folds": str(folds), "folds_sha256": sha256_file(folds) if folds.exists() else None,
                 "train_speakers": fold_info.get("train"), "val_speakers": fold_info.get("val"),
                 "n_train": fold_info.get("n_train"), "n_val": fold_info.get("n_val")},
        "family": "baseline" if baseline else "neural",
        "protocol": (svm_protocol_text(corpus, result) if baseline else
                     protocol_text(corpus, fold_info, result.get("best_val_uar") is not None)),
        "training": {"epochs": result.get("epochs"), "max_epochs": max_epochs, "seed": seed,
                     "best_val_uar": result.get("best_val_uar"),
                     "best_val_uar_note": ("the speaker-grouped inner cross-validation UAR that chose kernel and C: "
                                           "optimistic, not a test score") if baseline else
                     "on the validation speakers that chose the epoch: optimistic, not a test score",
                     "final_val_uar": result.get("final_val_uar"),
                     "command": command,
                     "lightning_args": args},
        "cross_validated": cv_result(corpus, system, results_dir, args, members=n),
        "config": config_text,
        "hyper_parameters": hparams,
        "date": _dt.datetime.now().astimezone().isoformat(timespec="seconds"),
        "git_commit": commit,
        "git_dirty": dirty,
        "mtl_aug_version": __version__,
        "torch_version": torch.__version__,
        "lightning_version": lightning.__version__,
        "machine": machine(),
    }
    if members:
        card["ensemble"] = [{"seed": s, "file": p.name, "sha256": sha256_file(p), "epochs": r.get("epochs"),
                             "best_val_uar": r.get("best_val_uar"), "final_val_uar": r.get("final_val_uar")}
                            for s, p, r in members]
    return card


def validation_line(t: dict, members: Sequence[dict] = ()) -> str:
    """The card's sentence on the validation UAR: of the model, or of each member of an ensemble."""
    best = t.get("best_val_uar")
    if members:
        chosen = any(m.get("best_val_uar") is not None for m in members)
        vals = [m.get("best_val_uar") if chosen else m.get("final_val_uar") for m in members]
        text = ", ".join(f"seed {m['seed']} {'–' if v is None else f'{100 * v:.1f} %'}" for m, v in zip(members, vals))
        which = ("best epoch: optimistic, not a test score" if chosen else
                 "final averaged weights; the validation speaker chose nothing")
        return f"Validation UAR of the members ({which}): {text}. The ensemble averages their class probabilities."
    if best is None and t.get("final_val_uar") is not None:
        return (f"Validation UAR of this model (its final averaged weights; the validation speaker chose nothing): "
                f"{100 * t['final_val_uar']:.1f} %.")
    return (f"Best validation UAR of this model: {'–' if best is None else f'{100 * best:.1f} %'} "
            f"({t['best_val_uar_note']}).")


def card_markdown(card: dict) -> str:
    cv = card["cross_validated"]
    t = card["training"]
    d = card["data"]
    members = card.get("ensemble") or []
    baseline = card.get("family") == "baseline"
    files = [(m["file"], m["sha256"]) for m in members] or [(card["checkpoint"]["file"], card["checkpoint"]["sha256"])]
    ckpt_flags = " ".join(f"--ckpt {f}" for f, _ in files)
    use = ([f"python -m mtl_aug predict my_recordings/ --ckpt <network>/model.ckpt --svm {files[0][0]} "
            "--csv predictions.csv  # late fusion with a network of the same classes"] if baseline else
           [f"python -m mtl_aug predict my_recordings/ {ckpt_flags} --csv predictions.csv",
            f"python -m mtl_aug export --ckpt {files[0][0]} --format onnx --out model.onnx"
            + ("  # one member per file" if members else "")])
    lines = [
        f"# Model card: {card['name']}",
        "",
        f"Speech emotion recognition, {len(card['class_names'])} classes ({', '.join(card['class_names'])}), "
        f"input: mono audio resampled to {card['sample_rate']} Hz. "
        + (f"System `{card['system']}`: openSMILE functionals + SVM, the classical baseline."
           if baseline else
           f"MTL-AUG (Latif et al., IEEE TAC 2022) system `{card['system']}`"
           + (f", a soft-voting ensemble of {len(members)} seeds." if members else ".")),
        "",
        "## Expected accuracy on unseen speakers",
        "",
        f"Cross-validated: {cv['text']}.",
        "",
        validation_line(t, members),
        "",
        "## Training data and protocol",
        "",
        f"- Corpus: `{card['corpus']}`, manifest `{d['manifest']}` sha256 `{d['manifest_sha256']}`"
        + (f", folds sha256 `{d['folds_sha256']}`" if d.get("folds_sha256") else ""),
        f"- Protocol: {card['protocol']}",
        (f"- Fitted once (no epochs), seed {t['seed']}" if baseline else
         f"- Epochs trained: {t.get('epochs')} (max {t.get('max_epochs') or 'from the config'}), "
         + (f"seeds {', '.join(str(m['seed']) for m in members)}" if members else f"seed {t['seed']}")),
        f"- Reproduce: `{t['command']}` at git commit `{card['git_commit']}`"
        + (" (working tree had uncommitted changes)" if card.get("git_dirty") else ""),
        "",
        "## Files",
        "",
        *[f"- `{f}` sha256 `{h}`" for f, h in files],
        "- `config.yaml`: the full resolved training configuration (also in `model_card.json`)",
        "",
        "## Use",
        "",
        "```bash",
        *use,
        "```",
        "",
        "## Limitations",
        "",
        "- Acted emotions of one corpus: accuracy drops on other languages, recording conditions and "
        "spontaneous speech (see the cross-corpus results of the evaluation suite).",
        f"- A {len(card['class_names'])}-way decision over the listed classes only; every input gets one of them "
        "(no \"other\" or \"no speech\" class).",
        "- Not for decisions about individuals (hiring, health, law enforcement).",
        "",
        "## Provenance",
        "",
        f"- Date: {card['date']}",
        f"- mtl_aug {card['mtl_aug_version']}, torch {card['torch_version']}, lightning {card['lightning_version']}",
        f"- Machine: {card['machine']}",
        "",
    ]
    return "\n".join(lines)


def write_card(out: Path, card: dict) -> tuple[Path, Path]:
    j = out / CARD_JSON
    j.write_text(json.dumps(card, indent=1, default=str) + "\n")
    m = out / CARD_MD
    m.write_text(card_markdown(card))
    return j, m
