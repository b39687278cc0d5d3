"""Inference and deployment: windowed prediction on any audio, TorchScript/ONNX export, release models.

* :func:`mtl_aug.checkpoints.load_model` — a checkpoint on any device, in eval mode, with one-line errors
  (:class:`~mtl_aug.checkpoints.CheckpointError`); :mod:`mtl_aug.inference.loading` — several as one ensemble.
* :mod:`mtl_aug.inference.windows` — window boundaries and window-to-utterance aggregation.
* :mod:`mtl_aug.inference.predict` — ``python -m mtl_aug predict PATH... --ckpt``.
* :mod:`mtl_aug.inference.export` — ``python -m mtl_aug export`` (TorchScript / ONNX, one graph).
* :mod:`mtl_aug.inference.pretrained` — ``python -m mtl_aug pretrained`` (release model + model card).
"""

from __future__ import annotations

from typing import Any

__all__ = ["CheckpointError", "load_model", "predict_waveform", "predict_files", "window_bounds"]


def __getattr__(name: str) -> Any:  # lazy: `import mtl_aug.inference` does not import torch models
    if name in ("CheckpointError", "load_model"):
        from mtl_aug import checkpoints

        return getattr(checkpoints, name)
    if name in ("predict_waveform", "predict_files"):
        from mtl_aug.inference import predict

        return getattr(predict, name)
    if name == "window_bounds":
        from mtl_aug.inference.windows import window_bounds

        return window_bounds
    raise AttributeError(name)
