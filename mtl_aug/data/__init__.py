"""Data layer: audio I/O, manifests, corpus builders (registry), folds, noise and the synthetic corpus.

Light on purpose: import submodules directly (``from mtl_aug.data.audio import load_audio``);
only the schema constants and audio entry points are re-exported here.
"""

from .audio import AudioError, AudioInfo, audio_info, load_audio
from .manifest import FOUR_CLASSES, MANIFEST_COLUMNS, read_manifest, write_manifest

__all__ = [
    "AudioError", "AudioInfo", "audio_info", "load_audio",
    "FOUR_CLASSES", "MANIFEST_COLUMNS", "read_manifest", "write_manifest",
]
