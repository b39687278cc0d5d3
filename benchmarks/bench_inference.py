"""Inference speed: real-time factor (processing time / audio duration) on ONE CPU thread.

    .venv/bin/python benchmarks/bench_inference.py [--ckpt model.ckpt] [--seconds 10] [--repeats 5] [--json out.json]

Runs a ``--seconds`` utterance (default 10 s, random speech-level noise: the cost does not depend on
the content) through the emotion path (front end -> encoder -> emotion head -> softmax) with
``torch.set_num_threads(1)``:

* ``eager``           PyTorch, the whole utterance in one pass (how the test sets are scored);
* ``eager_windowed``  PyTorch as ``predict`` runs it: 4 s windows every 2 s, one batch;
* ``torchscript``     the ``export --format torchscript`` graph, whole utterance;
* ``onnxruntime``     the ``export --format onnx`` graph in ONNX Runtime with 1 intra-op thread.

Each figure is the median of ``--repeats`` timed runs after one warm-up run. Without ``--ckpt`` the
model is an untrained ``MTLAugModule()`` with the default (demo/release) sizes: same compute.
``measure_rtf(model, seconds, repeats)`` is importable by the benchmark suite.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mtl_aug.inference.export import export_onnx, export_torchscript, read_torchscript  # noqa: E402
from mtl_aug.inference.loading import sample_rate  # noqa: E402
from mtl_aug.inference.windows import cut_windows, window_bounds_seconds  # noqa: E402


def _median_time(fn, repeats: int) -> float:
    fn()  # warm-up (allocations, lazy init, ORT graph optimisation)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def measure_rtf(model, seconds: float = 10.0, repeats: int = 5, backends=("eager", "eager_windowed", "torchscript",
                                                                          "onnxruntime")) -> dict:
    """``{"seconds", "threads": 1, "<backend>": {"median_s", "rtf"}, ...}`` for an MTLAugModule on 1 CPU thread.

    RTF = median processing time / audio duration (< 1: faster than real time). The exported graphs
    are written to a temporary folder and removed.
    """
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    model = model.cpu().eval()
    sr = sample_rate(model)
    n = int(seconds * sr)
    wave = (0.1 * torch.randn(1, n, generator=torch.Generator().manual_seed(0))).float()
    lengths = torch.tensor([n])
    out: dict = {"seconds": seconds, "threads": 1, "repeats": repeats, "torch": torch.__version__}

    def record(name: str, fn) -> None:
        t = _median_time(fn, repeats)
        out[name] = {"median_s": round(t, 5), "rtf": round(t / seconds, 5)}

    try:
        with torch.no_grad(), tempfile.TemporaryDirectory() as tmp, warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if "eager" in backends:
                record("eager", lambda: torch.softmax(model.emotion_logits(wave, lengths), -1))
            if "eager_windowed" in backends:
                chunk, wl = cut_windows(wave[0], window_bounds_seconds(n, sr, 4.0, 2.0))
                out["windows"] = int(chunk.size(0))
                record("eager_windowed", lambda: torch.softmax(model.emotion_logits(chunk, wl), -1))
            if "torchscript" in backends:
                ts, _ = read_torchscript(export_torchscript(model, Path(tmp) / "m.pt"))
                record("torchscript", lambda: ts(wave, lengths))
            if "onnxruntime" in backends:
                import onnxruntime as ort

                path = export_onnx(model, Path(tmp) / "m.onnx")
                opts = ort.SessionOptions()
                opts.intra_op_num_threads = 1
                opts.inter_op_num_threads = 1
                sess = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
                feeds = {"wave": wave.numpy(), "lengths": lengths.numpy().astype(np.int64)}
                record("onnxruntime", lambda: sess.run(["probs"], feeds))
                out["onnxruntime_version"] = ort.__version__
    finally:
        torch.set_num_threads(previous)
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--ckpt", default=None, help="checkpoint to time (default: untrained MTLAugModule())")
    p.add_argument("--seconds", type=float, default=10.0)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--json", default=None, help="also write the numbers here")
    a = p.parse_args(argv)
    if a.ckpt:
        from mtl_aug.checkpoints import load_model

        model = load_model(a.ckpt, "cpu")
    else:
        from mtl_aug.tasks import MTLAugModule

        torch.manual_seed(0)
        model = MTLAugModule().eval()
    res = measure_rtf(model, a.seconds, a.repeats)
    print(f"inference RTF on 1 CPU thread, {a.seconds:g} s utterance, median of {a.repeats} "
          f"({'checkpoint ' + a.ckpt if a.ckpt else 'untrained default-size model'}):")
    for name in ("eager", "eager_windowed", "torchscript", "onnxruntime"):
        if name in res:
            extra = f"  ({res['windows']} windows of 4 s, hop 2 s, one batch)" if name == "eager_windowed" else ""
            print(f"  {name:<15} {res[name]['median_s'] * 1000:8.1f} ms   RTF {res[name]['rtf']:.4f}{extra}")
    if a.json:
        Path(a.json).write_text(json.dumps(res, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
