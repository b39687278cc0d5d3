"""``python -m mtl_aug predict PATH... --ckpt model.ckpt [--ckpt other.ckpt ...]``: emotion of any audio files.

PATH may be a file, a folder (searched recursively for audio files by extension) or a glob pattern
(``"calls/**/*.wav"``; ``**`` is recursive). Every file is decoded with soundfile (any format it
reads), down-mixed to mono and resampled to the model's rate. A recording no longer than ``--window``
seconds is ONE window; a longer one is cut into ``--window``-second windows every ``--hop`` seconds,
the last window aligned to the end of the file (see :mod:`mtl_aug.inference.windows`). Each window
gets class probabilities; the file's probabilities are the MEAN of its window probabilities and the
predicted emotion is their arg-max. With several ``--ckpt``, each window's probabilities are the mean of
the models' (:class:`~mtl_aug.inference.loading.SeedEnsemble`). Windows are run in batches of ``--batch-size``.
With ``--svm model.pkl`` (a per-utterance openSMILE + SVM model, e.g. ``pretrained --system compare_svm``), the
file's probabilities are the equal-weight mean of the network's (ensemble's) and each SVM's, the SVM scoring
the whole file's functionals (late fusion, as ``python -m mtl_aug fuse`` evaluates it); the window timeline
stays the network's, and each part's file probabilities are kept under ``components``.

Output: a table on the terminal (``--timeline`` adds each file's windows), ``--json`` (files,
windows, failures) and ``--csv`` (one row per file: file, emotion, prob_<class>..., n_windows,
duration_s). Files that cannot be read are reported (path: reason) and skipped; the run finishes and
exits with status 1 if any file failed (0 otherwise).
"""

from __future__ import annotations

import argparse
import glob
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Sequence

import torch
from torch import Tensor

from mtl_aug.checkpoints import CheckpointError, resolve_device
from mtl_aug.inference.loading import class_names, load_models, load_svms, sample_rate
from mtl_aug.inference.predict_output import csv_columns, format_table, write_csv, write_json  # noqa: F401
from mtl_aug.inference.windows import aggregate, cut_windows, window_bounds_seconds

AGGREGATION = "mean of window probabilities"
FUSION = "; then the equal-weight mean with each SVM's probabilities of the whole file"
# Extensions picked up when a FOLDER is searched (files named explicitly are always tried).
FOLDER_EXTENSIONS = frozenset({
    ".wav", ".wave", ".flac", ".ogg", ".oga", ".opus", ".mp3", ".aif", ".aiff", ".aifc",
    ".au", ".snd", ".caf", ".w64", ".rf64", ".sph", ".nist",
})
_GLOB_CHARS = set("*?[")


# --------------------------------------------------------------------------------------------------
# inputs
# --------------------------------------------------------------------------------------------------


def _folder_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in FOLDER_EXTENSIONS)


def expand_inputs(paths: list[str]) -> tuple[list[Path], list[dict]]:
    """Files to process (in order, no duplicates) and failures ``{"file", "reason"}`` for bad arguments."""
    files: list[Path] = []
    failures: list[dict] = []
    for arg in paths:
        p = Path(arg)
        if p.is_dir():
            found = _folder_files(p)
            if not found:
                failures.append({"file": arg, "reason": "folder contains no audio files"})
            files += found
        elif p.exists():
            files.append(p)
        elif _GLOB_CHARS & set(arg):
            matches = sorted(glob.glob(arg, recursive=True))
            found = []
            for m in map(Path, matches):
                found += _folder_files(m) if m.is_dir() else [m] if m.is_file() else []
            if not found:
                failures.append({"file": arg, "reason": "no file matches this pattern"})
            files += found
        else:
            failures.append({"file": arg, "reason": "file not found"})
    unique = list(dict.fromkeys(files))
    return unique, failures


# --------------------------------------------------------------------------------------------------
# inference
# --------------------------------------------------------------------------------------------------


@torch.no_grad()
def window_probabilities(model, wave: Tensor, bounds: list[tuple[int, int]], batch_size: int = 16) -> Tensor:
    """Class probabilities ``[W, C]`` of the windows ``bounds`` of a 1-D ``wave``, in batches."""
    device = next(model.parameters()).device
    out = []
    for i in range(0, len(bounds), batch_size):
        chunk, lengths = cut_windows(wave, bounds[i : i + batch_size])
        logits = model.network(chunk.to(device), lengths.to(device))
        out.append(torch.softmax(logits.float(), dim=-1).cpu())
    return torch.cat(out)


def predict_waveform(model, wave: Tensor, window: float = 4.0, hop: float = 2.0, batch_size: int = 16,
                     svms: Sequence = (), what: str = "utterance") -> dict:
    """One mono waveform at the model's sample rate -> utterance result with its window timeline; ``svms``
    (baseline models) are fused with the network at the utterance level, each with the network's weight."""
    sr, names = sample_rate(model), class_names(model)
    bounds = window_bounds_seconds(int(wave.numel()), sr, window, hop)
    probs = window_probabilities(model, wave, bounds, batch_size)
    utt = aggregate(probs)
    windows = [
        {"start": s / sr, "end": e / sr, "emotion": names[int(p.argmax())],
         "probabilities": dict(zip(names, map(float, p)))}
        for (s, e), p in zip(bounds, probs)
    ]
    extra: dict = {}
    if svms:
        parts = {"network": utt, **{svm.path: torch.as_tensor(svm.utterance_probabilities(wave.numpy(), sr, what),
                                                              dtype=utt.dtype) for svm in svms}}
        utt = torch.stack(list(parts.values())).mean(0)
        extra["components"] = {k: dict(zip(names, map(float, v))) for k, v in parts.items()}
    return {"emotion": names[int(utt.argmax())], "probabilities": dict(zip(names, map(float, utt))),
            "n_windows": len(bounds), "duration": wave.numel() / sr, "windows": windows, **extra}


def _load(path: Path, sr: int) -> Tensor:
    from mtl_aug.data.audio import load_audio

    return load_audio(path, target_sr=sr)


def _reason(err: BaseException) -> str:
    problem = getattr(err, "problem", None)  # AudioError carries the reason without the path
    text = problem or str(err) or type(err).__name__
    return " ".join(str(text).split())


def predict_files(model, files: list[Path], window: float = 4.0, hop: float = 2.0, batch_size: int = 16,
                  progress: bool = True, svms: Sequence = ()) -> tuple[list[dict], list[dict]]:
    """Results (one dict per readable file, in input order) and failures ``{"file", "reason"}``.

    The next file is decoded in a background thread while the model runs on the current one.
    """
    from tqdm import tqdm

    sr = sample_rate(model)
    results: list[dict] = []
    failures: list[dict] = []
    bar = tqdm(total=len(files), unit="file", disable=not progress, file=sys.stderr, dynamic_ncols=True)
    with ThreadPoolExecutor(max_workers=1) as pool:
        pending = pool.submit(_load, files[0], sr) if files else None
        for i, path in enumerate(files):
            future = pending
            pending = pool.submit(_load, files[i + 1], sr) if i + 1 < len(files) else None
            try:
                wave = future.result()
                res = predict_waveform(model, wave, window, hop, batch_size, svms, str(path))
                results.append({"file": str(path), **res})
            except (KeyboardInterrupt, SystemExit):
                raise
            except Exception as err:  # noqa: BLE001 - one bad file must not stop the run
                failures.append({"file": str(path), "reason": _reason(err)})
                bar.write(f"FAILED {path}: {_reason(err)}", file=sys.stderr)
            bar.update(1)
    bar.close()
    return results, failures


# --------------------------------------------------------------------------------------------------
# CLI
# --------------------------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m mtl_aug predict",
        description="Predict the emotion of audio files, folders (recursive) or glob patterns. Long "
        "recordings are cut into overlapping windows; a file's probabilities are the mean of its "
        "window probabilities.",
    )
    p.add_argument("paths", nargs="+", metavar="PATH", help="audio file, folder (recursive) or glob pattern")
    p.add_argument("--ckpt", required=True, action="append",
                   help="trained checkpoint (.ckpt); repeat it (--ckpt a.ckpt --ckpt b.ckpt) to predict with the "
                        "mean probabilities of several models, e.g. the seeds of one recipe (soft voting)")
    p.add_argument("--svm", action="append", default=[], metavar="MODEL.pkl",
                   help="a per-utterance openSMILE + SVM model (pretrained --system compare_svm, or a cv run's "
                        "model.pkl) fused with the network: the equal-weight mean of their file probabilities")
    p.add_argument("--window", type=float, default=4.0, help="window length in seconds (default 4.0)")
    p.add_argument("--hop", type=float, default=2.0, help="hop between window starts in seconds (default 2.0)")
    p.add_argument("--batch-size", type=int, default=16, help="windows per forward pass (default 16)")
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    p.add_argument("--json", dest="json_out", metavar="OUT.json", help="write results, windows and failures")
    p.add_argument("--csv", dest="csv_out", metavar="OUT.csv", help="write one row per file")
    p.add_argument("--timeline", action="store_true", help="also print each long file's window timeline")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--quiet", "-q", action="store_true", help="no table on the terminal")
    return p


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.window <= 0 or args.hop <= 0:
        parser.error("--window and --hop must be positive")
    if args.batch_size < 1:
        parser.error("--batch-size must be >= 1")
    if args.threads is not None:
        if args.threads < 1:
            parser.error("--threads must be >= 1")
        torch.set_num_threads(args.threads)
    try:
        device = resolve_device(args.device)
        model = load_models(args.ckpt, device)
        svms = load_svms(args.svm, model)
    except (CheckpointError, RuntimeError) as err:
        print(f"predict: error: {err}", file=sys.stderr)
        return 1
    names = class_names(model)

    files, failures = expand_inputs(args.paths)
    for f in failures:
        print(f"FAILED {f['file']}: {f['reason']}", file=sys.stderr)
    t0 = time.perf_counter()
    progress = not args.no_progress and len(files) > 1
    results, failed = predict_files(model, files, args.window, args.hop, args.batch_size, progress=progress, svms=svms)
    failures += failed
    elapsed = time.perf_counter() - t0

    if results and not args.quiet:
        print(format_table(results, names, timeline=args.timeline))
    if args.json_out:
        write_json(args.json_out, {
            "checkpoint": args.ckpt[0] if len(args.ckpt) == 1 else args.ckpt, "class_names": names, "sample_rate": sample_rate(model),
            **({"svm": args.svm} if svms else {}),
            "window_seconds": args.window, "hop_seconds": args.hop,
            "aggregation": AGGREGATION + (FUSION if svms else ""),
            "results": results, "failures": failures,
        })
    if args.csv_out:
        write_csv(args.csv_out, results, names)
    audio_s = sum(r["duration"] for r in results)
    print(f"{len(results)} file(s) predicted ({audio_s:.1f} s of audio in {elapsed:.1f} s on {device}), "
          f"{len(failures)} failed", file=sys.stderr)
    for f in failures:
        print(f"  failed: {f['file']}: {f['reason']}", file=sys.stderr)
    return 1 if failures or not results else 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
