"""resolve_root: explicit root > env var > default; clear errors naming corpus, env var and path."""

from __future__ import annotations

from pathlib import Path

import pytest

from mtl_aug.data.corpora import CORPORA, UnknownCorpusError
from mtl_aug.data.roots import CorpusRootError, resolve_root

EXPECTED = {"iemocap", "msp_improv", "emodb", "ravdess", "librispeech", "demand", "speech_commands",
            "synthetic", "synthetic_unlabelled"}


def test_registry_has_every_corpus() -> None:
    assert set(CORPORA) == EXPECTED
    assert CORPORA["speech_commands"].env_var == "NOISE_ROOT"
    assert CORPORA["ravdess"].protocol == "grouped_kfold" and CORPORA["librispeech"].protocol is None


def test_explicit_root_wins_over_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "f").write_text("x")
    monkeypatch.setenv("EMODB_ROOT", str(tmp_path / "nowhere"))
    assert resolve_root("emodb", str(tmp_path / "a")) == (tmp_path / "a").resolve()
    with pytest.raises(CorpusRootError, match="EMODB_ROOT"):
        resolve_root("emodb")


def test_env_var_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "f").write_text("x")
    monkeypatch.setenv("IEMOCAP_ROOT", str(tmp_path))
    assert resolve_root("iemocap") == tmp_path.resolve()


def test_synthetic_default_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SYNTHETIC_ROOT", raising=False)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(CorpusRootError, match=r"\.cache/synthetic"):
        resolve_root("synthetic")
    (tmp_path / ".cache" / "synthetic").mkdir(parents=True)
    (tmp_path / ".cache" / "synthetic" / "params.json").write_text("{}")
    assert resolve_root("synthetic") == (tmp_path / ".cache" / "synthetic").resolve()


@pytest.mark.parametrize("state", ["unset", "missing", "empty", "file"])
def test_bad_roots_name_corpus_env_and_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, state: str) -> None:
    monkeypatch.delenv("MSP_IMPROV_ROOT", raising=False)
    root = {"unset": None, "missing": tmp_path / "absent", "empty": tmp_path, "file": tmp_path / "f"}[state]
    if state == "file":
        root.write_text("x")
    with pytest.raises(CorpusRootError) as err:
        resolve_root("msp_improv", root)
    message = str(err.value)
    assert "msp_improv" in message and "MSP_IMPROV_ROOT" in message
    if root is not None:
        assert str(root) in message


def test_unknown_corpus_lists_known() -> None:
    with pytest.raises(UnknownCorpusError, match="emodb"):
        resolve_root("nope")
