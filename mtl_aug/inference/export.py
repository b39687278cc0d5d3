"""``python -m mtl_aug export``: the front end, encoder and emotion head as ONE graph.

Input: a 16 kHz (the model's ``sample_rate``) mono waveform ``wave [B, T]`` (float32, zero-padded)
plus ``lengths [B]`` (int64, valid samples per row). Output: ``probs [B, C]`` class probabilities
(softmax of the emotion logits). Batch size and length are dynamic in both formats.

* TorchScript (``--format torchscript``): ``torch.jit.trace`` of the model's own modules (exact
  ``torch.stft`` front end). Class names and the sample rate are stored in the archive as the extra
  file ``mtl_aug.json``.
* ONNX (``--format onnx``): the TorchScript-based ``torch.onnx.export`` (opset 17) of an export-only
  wrapper in which the STFT is a strided ``conv1d`` with a windowed DFT basis (that exporter does not
  take the complex STFT), followed by the model's own mel filterbank; checked for parity against the
  PyTorch model. ``dynamic_axes`` make B and T variable; class names etc. are in ``metadata_props``.
  (``--onnx-exporter dynamo`` exports the real STFT through ``torch.export`` and opset 18; it
  works too, with the same parity, but takes ~40 s instead of ~2 s on a 2-core CPU.)
The emotion head's BLSTM needs no substitute: it runs without packing (``mtl_aug.heads.blstm``).

After writing, the command reloads the file and checks it against the PyTorch model on a batch of
two different-length inputs; it fails (exit 1) if the max probability difference is >= 1e-4.
"""

from __future__ import annotations

import argparse
import copy
import json
import logging
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn

from mtl_aug.checkpoints import CheckpointError, load_model
from mtl_aug.inference.dft import DFTMelSpectrogram
from mtl_aug.inference.loading import class_names, sample_rate
from mtl_aug.network import IN_GRAPH_FUNCTIONALS
from mtl_aug.data.voice_encoder import VoiceEncoderTracks

log = logging.getLogger(__name__)

FORMATS = ("torchscript", "onnx")
PARITY_TOLERANCE = 1e-4
METADATA_FILE = "mtl_aug.json"  # TorchScript extra file with class names, sample rate, ...
ONNX_OPSET = 17


class ProbabilityModel(nn.Module):
    """``(wave [B, T], lengths [B]) -> probs [B, C]``: the model's network (its one forward path) + softmax.

    ``portable=False`` uses the network as it is (TorchScript tracing); ``portable=True`` swaps in the
    DFT-conv mel spectrogram (ONNX) in a copy.
    """

    def __init__(self, model: nn.Module, portable: bool = False) -> None:
        super().__init__()
        self.network = copy.deepcopy(model.network)
        if portable:
            front = self.network.front_end
            front.mel = DFTMelSpectrogram(front.mel)
            for voice in [m for m in self.network.modules() if isinstance(m, VoiceEncoderTracks)]:
                voice.mel = DFTMelSpectrogram(voice.mel)  # the voice encoder's own mel (tracks, statistics)
        self.portable = portable
        self.eval()

    def forward(self, wave: Tensor, lengths: Tensor) -> Tensor:
        return torch.softmax(self.network(wave, lengths), dim=-1)


def export_blockers(model: nn.Module) -> str:
    """Why this model's inference path cannot be one exported graph ("" when it can)."""
    net = model.network
    if net.functionals and net.functionals not in IN_GRAPH_FUNCTIONALS:
        return (f"the model fuses utterance features ({net.functionals} functionals), computed outside the network; "
                "export covers models whose whole path is the network")
    if net.tta_crops > 1:
        return (f"the model classifies {net.tta_crops} crops per utterance at test time; the exported graph "
                "classifies one window (use `predict --window` for long audio)")
    return ""


def reference_probs(model: nn.Module, wave: Tensor, lengths: Tensor) -> Tensor:
    """The PyTorch model's probabilities (its own eval path)."""
    with torch.no_grad():
        return torch.softmax(model.network(wave, lengths), dim=-1)


# --------------------------------------------------------------------------------------------------
# metadata
# --------------------------------------------------------------------------------------------------


def export_metadata(model: nn.Module, ckpt: str | Path | None, fmt: str) -> dict:
    from mtl_aug import __version__

    meta = {
        "class_names": class_names(model),
        "sample_rate": sample_rate(model),
        "inputs": {"wave": "float32 [B, T] mono waveform at sample_rate, zero-padded",
                   "lengths": "int64 [B] valid samples per row"},
        "outputs": {"probs": "float32 [B, C] class probabilities, columns in class_names order"},
        "format": fmt,
        "mtl_aug_version": __version__,
        "torch_version": torch.__version__,
        "checkpoint": str(ckpt) if ckpt else None,
    }
    fmt_version = getattr(model, "checkpoint_format", None)  # set by load_model
    if fmt_version is not None:
        meta["mtl_aug_format"] = fmt_version
    return meta


def read_torchscript(path: str | Path, map_location: str = "cpu"):
    """``(scripted module, metadata dict)`` of an exported TorchScript file."""
    extra = {METADATA_FILE: ""}
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*torch.jit.* is deprecated", category=FutureWarning)
        module = torch.jit.load(str(path), map_location=map_location, _extra_files=extra)
    return module, json.loads(extra[METADATA_FILE] or "{}")


def read_onnx_metadata(path: str | Path) -> dict:
    import onnx

    props = {p.key: p.value for p in onnx.load(str(path), load_external_data=False).metadata_props}
    out: dict = {}
    for k, v in props.items():
        try:
            out[k] = json.loads(v)
        except ValueError:
            out[k] = v
    return out


# --------------------------------------------------------------------------------------------------
# export
# --------------------------------------------------------------------------------------------------


def example_inputs(sr: int, seconds: tuple[float, ...] = (1.0, 0.6), seed: int = 0) -> tuple[Tensor, Tensor]:
    """A zero-padded batch of random waveforms of the given durations."""
    g = torch.Generator().manual_seed(seed)
    lengths = torch.tensor([max(1, int(s * sr)) for s in seconds], dtype=torch.long)
    wave = torch.zeros(len(seconds), int(lengths.max()))
    for i, n in enumerate(lengths.tolist()):
        wave[i, :n] = 0.1 * torch.randn(n, generator=g)
    return wave, lengths


def export_torchscript(model: nn.Module, out: str | Path, ckpt: str | Path | None = None) -> Path:
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    wrapper = ProbabilityModel(model.cpu(), portable=False)
    wave, lengths = example_inputs(sample_rate(model))
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # TracerWarnings about shape-to-int conversions; parity is checked
        traced = torch.jit.trace(wrapper, (wave, lengths), check_trace=False)
    meta = export_metadata(model, ckpt, "torchscript")
    with warnings.catch_warnings():  # TorchScript is deprecated upstream (documented); ONNX is the alternative
        warnings.filterwarnings("ignore", message=".*torch.jit.* is deprecated", category=FutureWarning)
        torch.jit.save(traced, str(out), _extra_files={METADATA_FILE: json.dumps(meta)})
    return out


def export_onnx(model: nn.Module, out: str | Path, ckpt: str | Path | None = None, exporter: str = "legacy") -> Path:
    import onnx

    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    wrapper = ProbabilityModel(model.cpu(), portable=(exporter == "legacy"))
    wave, lengths = example_inputs(sample_rate(model))
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if exporter == "legacy":
            torch.onnx.export(
                wrapper, (wave, lengths), str(out), dynamo=False, opset_version=ONNX_OPSET,
                input_names=["wave", "lengths"], output_names=["probs"],
                dynamic_axes={"wave": {0: "batch", 1: "samples"}, "lengths": {0: "batch"}, "probs": {0: "batch"}},
            )
        elif exporter == "dynamo":
            batch, samples = torch.export.Dim("batch"), torch.export.Dim("samples", min=2, max=2**31 - 1)
            torch.onnx.export(
                wrapper, (wave, lengths), str(out), dynamo=True, opset_version=18, external_data=False,
                input_names=["wave", "lengths"], output_names=["probs"],
                dynamic_shapes={"wave": {0: batch, 1: samples}, "lengths": {0: batch}},
            )
        else:
            raise ValueError(f"unknown ONNX exporter {exporter!r} (legacy | dynamo)")
    proto = onnx.load(str(out))
    meta = export_metadata(model, ckpt, "onnx")
    meta["onnx_exporter"] = exporter
    del proto.metadata_props[:]
    for key, value in meta.items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value if isinstance(value, str) else json.dumps(value)
    proto.doc_string = "mtl-aug speech emotion recognition: (wave [B,T] @ sample_rate, lengths [B]) -> probs [B,C]"
    onnx.checker.check_model(proto)
    onnx.save(proto, str(out))
    return out


# --------------------------------------------------------------------------------------------------
# parity
# --------------------------------------------------------------------------------------------------


def run_exported(path: str | Path, fmt: str, wave: Tensor, lengths: Tensor, threads: int | None = None) -> np.ndarray:
    if fmt == "torchscript":
        module, _ = read_torchscript(path)
        with torch.no_grad():
            return module(wave, lengths).numpy()
    import onnxruntime as ort

    opts = ort.SessionOptions()
    if threads:
        opts.intra_op_num_threads = threads
    session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    return session.run(["probs"], {"wave": wave.numpy(), "lengths": lengths.numpy().astype(np.int64)})[0]


def parity(model: nn.Module, path: str | Path, fmt: str, seconds: tuple[float, ...] = (2.3, 0.7)) -> float:
    """Max |p_exported - p_pytorch| over a batch of different-length inputs (not the tracing shapes)."""
    wave, lengths = example_inputs(sample_rate(model), seconds, seed=1)
    ref = reference_probs(model.cpu(), wave, lengths).numpy()
    got = run_exported(path, fmt, wave, lengths)
    if got.shape != ref.shape:
        raise RuntimeError(f"exported model returned shape {got.shape}, PyTorch {ref.shape}")
    return float(np.abs(got - ref).max())


# --------------------------------------------------------------------------------------------------
# CLI
# --------------------------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m mtl_aug export",
        description="Export front end + encoder + emotion head as one graph: (wave [B,T] at the model's "
        "sample rate, lengths [B]) -> class probabilities [B,C]. Checks parity with PyTorch after export.",
    )
    p.add_argument("--ckpt", required=True, help="trained checkpoint (.ckpt)")
    p.add_argument("--format", choices=FORMATS, default=None, help="default: from --out's extension (.onnx -> onnx)")
    p.add_argument("--out", required=True, help="output file (model.pt / model.onnx)")
    p.add_argument("--onnx-exporter", choices=("legacy", "dynamo"), default="legacy",
                   help="legacy: TorchScript-based exporter with the DFT-conv STFT (fast, default); "
                   "dynamo: torch.export with the real STFT op (opset 18, ~20x slower to export)")
    p.add_argument("--no-check", action="store_true", help="skip the parity check against PyTorch")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    fmt = args.format or ("onnx" if str(args.out).lower().endswith(".onnx") else "torchscript")
    try:
        model = load_model(args.ckpt, "cpu")
    except (CheckpointError, RuntimeError) as err:
        print(f"export: error: {err}", file=sys.stderr)
        return 1
    unsupported = export_blockers(model)
    if unsupported:
        print(f"export: error: {args.ckpt}: {unsupported}", file=sys.stderr)
        return 1
    t0 = time.perf_counter()
    if fmt == "torchscript":
        out = export_torchscript(model, args.out, args.ckpt)
    else:
        out = export_onnx(model, args.out, args.ckpt, exporter=args.onnx_exporter)
    print(f"wrote {out} ({fmt}, {out.stat().st_size / 1e6:.2f} MB, {time.perf_counter() - t0:.1f} s); "
          f"classes: {', '.join(class_names(model))}; input: float32 mono waveform at {sample_rate(model)} Hz + lengths")
    if args.no_check:
        return 0
    diff = parity(model, out, fmt)
    ok = diff < PARITY_TOLERANCE
    print(f"parity vs PyTorch (2 inputs of different lengths): max |dp| = {diff:.2e} "
          f"({'OK' if ok else 'FAILED'}, tolerance {PARITY_TOLERANCE:g})")
    return 0 if ok else 1


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
