"""Corpus builders on tiny fixture trees laid out exactly like each release (real audio, ~0.1 s)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import soundfile as sf

from mtl_aug.data.corpora import CORPORA
from mtl_aug.data.folds import read_folds
from mtl_aug.data.prepare import prepare
from mtl_aug.data.manifest import read_manifest

SEC = 0.1


def _build(corpus: str, root: Path):
    result = CORPORA[corpus].build(root)
    return result.rows.set_index("key"), dict(result.skipped)


def _bad(path: Path, kind: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if kind == "zero":
        sf.write(path, np.zeros((0, 1), np.float32), 16000)
    elif kind == "text":
        path.write_text("not audio\n")
    elif kind == "truncated":
        sf.write(path, np.zeros(8000, np.float32), 16000)
        path.write_bytes(path.read_bytes()[:2000])


# --- EMODB ---------------------------------------------------------------------------------------

def test_emodb_names_genders_and_bad_files(tmp_path: Path, make_audio) -> None:
    wav = tmp_path / "wav"
    for name in ["03a01Wa", "03a01La", "08b02Fb", "16a05Tc", "10a07Na"]:
        make_audio(wav / f"{name}.wav", seconds=SEC, sr=22050)
    make_audio(wav / "03a01Xa.wav", seconds=SEC)  # unknown emotion letter
    make_audio(wav / "._03a01Wa.wav", seconds=SEC)  # macOS resource fork
    make_audio(wav / "notes.wav", seconds=SEC)  # not an EMODB name
    _bad(wav / "09a01Wa.wav", "zero")
    _bad(wav / "11a01Wa.wav", "text")
    _bad(wav / "12a01Wa.wav", "truncated")
    (wav / "readme.txt").write_text("ignored: not an audio extension")
    rows, skipped = _build("emodb", tmp_path)
    assert sorted(rows.index) == ["03a01La", "03a01Wa", "08b02Fb", "10a07Na", "16a05Tc"]
    assert rows.loc["08b02Fb", ["speaker", "gender", "emotion", "label", "raw_label"]].tolist() == \
        ["08", "F", "happiness", "happy", "F"]
    assert rows.loc["03a01La", "label"] == "" and rows.loc["03a01La", "emotion"] == "boredom"
    assert rows.loc["03a01Wa", "path"] == "wav/03a01Wa.wav" and rows.loc["03a01Wa", "sample_rate"] == 22050
    assert set(skipped) == {"wav/03a01Xa.wav", "wav/._03a01Wa.wav", "wav/notes.wav", "wav/09a01Wa.wav",
                            "wav/11a01Wa.wav", "wav/12a01Wa.wav"}
    assert "'X'" in skipped["wav/03a01Xa.wav"]
    assert "zero-length" in skipped["wav/09a01Wa.wav"]
    assert "not a readable audio file" in skipped["wav/11a01Wa.wav"]
    assert "truncated" in skipped["wav/12a01Wa.wav"]


# --- RAVDESS -------------------------------------------------------------------------------------

def test_ravdess_wav_48k_flac_and_bad_codes(tmp_path: Path, make_audio) -> None:
    base = tmp_path / "Audio_Speech_Actors_01-24"
    make_audio(base / "Actor_01" / "03-01-05-01-01-01-01.wav", seconds=SEC, sr=48000, channels=2)
    make_audio(base / "Actor_02" / "03-01-02-02-01-02-02.flac", seconds=SEC)
    make_audio(base / "Actor_02" / "03-01-02-02-01-02-02.wav", seconds=SEC)  # same utterance twice
    make_audio(base / "Actor_03" / "03-01-09-01-01-01-03.wav", seconds=SEC)  # no emotion 09
    make_audio(base / "Actor_03" / "03-02-03-01-01-01-03.wav", seconds=SEC)  # song, not speech
    rows, skipped = _build("ravdess", tmp_path)
    assert rows.loc["03-01-05-01-01-01-01", ["speaker", "gender", "emotion", "label", "channels"]].tolist() == \
        ["01", "M", "angry", "angry", 2]
    assert rows.loc["03-01-02-02-01-02-02", ["speaker", "gender", "emotion", "label"]].tolist() == \
        ["02", "F", "calm", ""]
    assert "duplicate" in skipped["Audio_Speech_Actors_01-24/Actor_02/03-01-02-02-01-02-02.wav"]
    assert "'09'" in skipped["Audio_Speech_Actors_01-24/Actor_03/03-01-09-01-01-01-03.wav"]
    assert "speech" in skipped["Audio_Speech_Actors_01-24/Actor_03/03-02-03-01-01-01-03.wav"]


# --- IEMOCAP -------------------------------------------------------------------------------------

def _iemocap_dialog(root: Path, session: int, dialog: str, utterances: dict[str, str], wavs: list[str],
                    make_audio) -> None:
    lines = ["% [START_TIME - END_TIME] TURN_NAME EMOTION [V, A, D]", ""]
    for i, (utt, code) in enumerate(utterances.items()):
        lines += [f"[{i * 3 + 0.5:.4f} - {i * 3 + 2.25:.4f}]\t{utt}\t{code}\t[2.5000, 3.0000, 3.5000]",
                  "C-E1:\tNeutral;\t()", "C-E2:\tExcited; Happiness;\t(laughs)", "A-E1:\tval 3; act 2; dom  3;\t()", ""]
    txt = root / f"Session{session}" / "dialog" / "EmoEvaluation" / f"{dialog}.txt"
    txt.parent.mkdir(parents=True, exist_ok=True)
    txt.write_text("\n".join(lines) + "\n")
    for utt in wavs:
        make_audio(root / f"Session{session}" / "sentences" / "wav" / dialog / f"{utt}.wav", seconds=SEC)


def make_iemocap(root: Path, make_audio) -> None:
    d1 = "Ses01F_impro01"
    _iemocap_dialog(root, 1, d1, {f"{d1}_F000": "neu", f"{d1}_M000": "exc", f"{d1}_F001": "ang",
                                  f"{d1}_M001": "zzz", f"{d1}_M002": "sad"},
                    [f"{d1}_F000", f"{d1}_M000", f"{d1}_F001", f"{d1}_M001", f"{d1}_F002", f"._{d1}_F000"], make_audio)
    d2 = "Ses01M_script01_1"  # dialog led by the male actor: the utterance letter still decides the speaker
    _iemocap_dialog(root, 1, d2, {f"{d2}_F000": "hap", f"{d2}_M000": "fru", f"{d2}_M001": "sad"},
                    [f"{d2}_F000", f"{d2}_M000", f"{d2}_M001"], make_audio)
    d3 = "Ses02F_impro02"
    _iemocap_dialog(root, 2, d3, {f"{d3}_F000": "sad", f"{d3}_M000": "neu", f"{d3}_M001": "xxx"},
                    [f"{d3}_F000", f"{d3}_M000", f"{d3}_M001"], make_audio)


def test_iemocap_release_layout(tmp_path: Path, make_audio) -> None:
    make_iemocap(tmp_path, make_audio)
    rows, skipped = _build("iemocap", tmp_path)
    assert rows.loc["Ses01F_impro01_M000", ["speaker", "session", "gender", "raw_label", "emotion", "label"]].tolist() == \
        ["Ses01M", "Ses01", "M", "exc", "excited", "happy"]
    assert rows.loc["Ses01M_script01_1_F000", ["speaker", "label"]].tolist() == ["Ses01F", "happy"]
    assert rows.loc["Ses01M_script01_1_M000", ["emotion", "label"]].tolist() == ["frustrated", ""]
    assert rows.loc["Ses02F_impro02_M001", ["emotion", "label"]].tolist() == ["no_agreement", ""]
    assert rows.loc["Ses01F_impro01_F001", "path"] == "Session1/sentences/wav/Ses01F_impro01/Ses01F_impro01_F001.wav"
    assert len(rows) == 9
    w = "Session1/sentences/wav/Ses01F_impro01/"
    assert "'zzz'" in skipped[w + "Ses01F_impro01_M001.wav"]
    assert "no label" in skipped[w + "Ses01F_impro01_F002.wav"]
    assert "missing" in skipped[w + "Ses01F_impro01_M002.wav"]
    assert "hidden" in skipped[w + "._Ses01F_impro01_F000.wav"]
    assert len(skipped) == 4


def test_iemocap_prepare_folds_pair_session_partners(tmp_path: Path, make_audio) -> None:
    make_iemocap(tmp_path / "IEMOCAP", make_audio)
    summary = prepare("iemocap", str(tmp_path / "IEMOCAP"), str(tmp_path / "out"), progress=False)
    assert summary["label_counts"] == {"angry": 1, "happy": 2, "neutral": 2, "sad": 2}
    folds = read_folds(tmp_path / "out" / "iemocap" / "folds.json")
    assert {f["name"]: f["val"] for f in folds["folds"]} == \
        {"Ses01F": ["Ses01M"], "Ses01M": ["Ses01F"], "Ses02F": ["Ses02M"], "Ses02M": ["Ses02F"]}
    assert summary["n_skipped"] == 4


# --- MSP-IMPROV ----------------------------------------------------------------------------------

def make_msp_improv(root: Path, make_audio) -> None:
    entries = {  # utterance id -> consensus letter
        "S01A-F01-P-FM01": "A", "S01H-M01-S-MF01": "H", "S02S-F02-T-FM02": "S", "S03N-M02-R-MF02": "N",
        "S04A-F03-P-FM03": "O", "S05H-M03-P-MF03": "X", "S06S-F01-P-FM01": "Q", "S07N-M01-P-MF01": "N",
    }
    lines = []
    for utt, letter in entries.items():
        lines += [f"UTD-IMPROV-{utt}.avi; {letter}; A:3.000000; V:2.800000; D:3.200000 ; N:4.000000;",
                  "----", "Annotator 12; Angry; Frustrated; A:3.000000; V:2.000000; D:3.000000; N:4.000000;", ""]
    root.mkdir(parents=True, exist_ok=True)
    (root / "Evalution.txt").write_text("\n".join(lines) + "\n")
    for utt in list(entries)[:-1]:  # the last labelled utterance has no audio
        sentence, speaker, kind, _ = utt.split("-")
        make_audio(root / "Audio" / f"session{int(speaker[1:])}" / sentence / kind / f"MSP-IMPROV-{utt}.wav",
                   seconds=SEC, sr=44100)
    make_audio(root / "Audio" / "session1" / "S09A" / "P" / "MSP-IMPROV-S09A-F01-P-FM01.wav", seconds=SEC)  # unlabelled


def test_msp_improv_release_layout(tmp_path: Path, make_audio) -> None:
    make_msp_improv(tmp_path, make_audio)
    rows, skipped = _build("msp_improv", tmp_path)
    assert rows.loc["MSP-IMPROV-S01H-M01-S-MF01", ["speaker", "gender", "session", "raw_label", "label"]].tolist() == \
        ["M01", "M", "session1", "H", "happy"]
    assert rows.loc["MSP-IMPROV-S02S-F02-T-FM02", "path"] == "Audio/session2/S02S/T/MSP-IMPROV-S02S-F02-T-FM02.wav"
    assert rows.loc["MSP-IMPROV-S04A-F03-P-FM03", ["emotion", "label"]].tolist() == ["other", ""]
    assert rows.loc["MSP-IMPROV-S05H-M03-P-MF03", ["emotion", "label"]].tolist() == ["no_agreement", ""]
    assert len(rows) == 6
    assert "'Q'" in skipped["Audio/session1/S06S/P/MSP-IMPROV-S06S-F01-P-FM01.wav"]
    assert "no consensus label" in skipped["Audio/session1/S09A/P/MSP-IMPROV-S09A-F01-P-FM01.wav"]
    assert "missing" in skipped["Audio/session1/S07N/P/MSP-IMPROV-S07N-M01-P-MF01.wav"]
    summary = prepare("msp_improv", str(tmp_path), str(tmp_path / "out"), progress=False)
    folds = {f["name"]: f for f in read_folds(tmp_path / "out" / "msp_improv" / "folds.json")["folds"]}
    assert set(folds) == {"F01", "M01", "F02", "M02"}  # F03/M03 have no 4-class utterance
    assert folds["M02"]["val"] == ["F02"] and folds["F01"]["val"] == ["M01"]
    assert summary["n_labelled"] == 4


# --- LibriSpeech, DEMAND, Speech Commands --------------------------------------------------------

def test_librispeech_speakers_and_genders(tmp_path: Path, make_audio) -> None:
    (tmp_path / "SPEAKERS.TXT").write_text(";ID  |SEX| SUBSET |MINUTES| NAME\n1089   | M | test-clean | 5.0 | A\n"
                                           "19   | F | train-clean-100 | 25.19 | B\n")
    make_audio(tmp_path / "test-other" / "1089" / "134686" / "1089-134686-0000.flac", seconds=SEC)
    make_audio(tmp_path / "train-clean-100" / "19" / "198" / "19-198-0001.flac", seconds=SEC)
    make_audio(tmp_path / "train-clean-100" / "7" / "1" / "7-1-0001.flac", seconds=SEC)
    (tmp_path / "test-other" / "1089" / "134686" / "1089-134686.trans.txt").write_text("x\n")
    rows, skipped = _build("librispeech", tmp_path)
    assert rows[["speaker", "gender", "session", "label"]].to_dict("index") == {
        "1089-134686-0000": {"speaker": "1089", "gender": "M", "session": "134686", "label": ""},
        "19-198-0001": {"speaker": "19", "gender": "F", "session": "198", "label": ""},
        "7-1-0001": {"speaker": "7", "gender": "", "session": "1", "label": ""},
    }
    assert skipped == {}


def test_demand_uses_ch01_per_environment(tmp_path: Path, make_audio) -> None:
    for ch in ("ch01", "ch02", "ch16"):
        make_audio(tmp_path / "DKITCHEN" / f"{ch}.wav", seconds=SEC, sr=48000)
    make_audio(tmp_path / "NPARK" / "ch01.wav", seconds=SEC)
    make_audio(tmp_path / "OMEETING" / "ch02.wav", seconds=SEC)
    _bad(tmp_path / "STRAFFIC" / "ch01.wav", "truncated")
    rows, skipped = _build("demand", tmp_path)
    assert rows["path"].to_dict() == {"DKITCHEN": "DKITCHEN/ch01.wav", "NPARK": "NPARK/ch01.wav"}
    assert set(rows["raw_label"]) == {"real"} and set(rows["label"]) == {""}
    assert "ch01" in skipped["OMEETING"] and "truncated" in skipped["STRAFFIC/ch01.wav"]


def test_speech_commands_real_and_synthetic(tmp_path: Path, make_audio) -> None:
    noise = tmp_path / "_background_noise_"
    for name in ("running_tap", "white_noise", "pink_noise"):
        make_audio(noise / f"{name}.wav", seconds=SEC)
    (noise / "README.md").write_text("about the noise\n")
    rows, skipped = _build("speech_commands", tmp_path)
    assert rows["raw_label"].to_dict() == {"pink_noise": "synthetic", "running_tap": "real", "white_noise": "synthetic"}
    assert skipped == {}
    summary = prepare("speech_commands", str(tmp_path), str(tmp_path / "out"), progress=False)
    assert not (tmp_path / "out" / "speech_commands" / "folds.json").exists()
    assert summary["protocol"] is None and summary["n_rows"] == 3
    assert read_manifest(tmp_path / "out" / "speech_commands" / "manifest.csv")["speaker"].tolist() == ["", "", ""]
    assert json.loads((tmp_path / "out" / "speech_commands" / "summary.json").read_text())["n_skipped"] == 0
