"""Corpus registry: ``CORPORA[name]`` is the :class:`CorpusSpec` of each supported corpus.

Importing this package registers every corpus module below (one module per corpus).
"""

from .base import CORPORA, CUSTOM, BuildResult, CorpusSpec, UnknownCorpusError, get_corpus, register_corpus
from . import demand, emodb, iemocap, librispeech, msp_improv, ravdess, speech_commands, synthetic  # noqa: F401  (register)

__all__ = ["CORPORA", "CUSTOM", "BuildResult", "CorpusSpec", "UnknownCorpusError", "get_corpus", "register_corpus"]
