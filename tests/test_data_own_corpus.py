"""Your own corpus with no code (issue 34): ``prepare --csv`` and ``prepare --folders`` on tiny files, the folds
they write (speaker-disjointness checked like every corpus's), and the errors a user meets. No training here:
tests/test_own_corpus_e2e.py runs cv and cross on such corpora."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pandas as pd
import pytest

from mtl_aug.data.corpora import CORPORA, CUSTOM, get_corpus
from mtl_aug.data.corpora.custom import ensure_registered
from mtl_aug.data.corpora.custom_def import CustomCorpusError, parse_mapping
from mtl_aug.data.custom_corpus import balanced_kfold
from mtl_aug.data.folds import check_folds, read_folds
from mtl_aug.data.labels import LabelMapError, map_test_labels
from mtl_aug.data.manifest import read_manifest, read_skipped
from mtl_aug.data.prepare import main
from mtl_aug.data.roots import resolve_root

SPEAKERS = ["s01", "s02", "s03", "s04"]
LABELS = ["Wut", "Freude", "Trauer"]


def write_csv(path: Path, rows: list[dict], columns: list[str] | None = None) -> Path:
    columns = columns or list(rows[0])
    with open(path, "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=columns, extrasaction="ignore")
        w.writeheader()
        w.writerows(rows)
    return path


@pytest.fixture
def csv_corpus(tmp_path: Path, make_audio) -> tuple[Path, Path, list[dict]]:
    """root/audio/<speaker>/<n>.wav, 4 speakers x 3 labels x 2 files, listed in root/meta.csv."""
    root = tmp_path / "corpus"
    rows = []
    for spk in SPEAKERS:
        for i, label in enumerate(LABELS):
            for rep in range(2):
                rel = f"audio/{spk}/{label.lower()}_{rep}.wav"
                make_audio(root / rel, seconds=0.1, freq=200 + 50 * i)
                rows.append({"path": rel, "label": label, "speaker": spk, "gender": "F" if spk < "s03" else "M"})
    return root, write_csv(root / "meta.csv", rows), rows


@pytest.fixture
def folder_corpus(tmp_path: Path, make_audio) -> Path:
    """root/<Label>/<speaker>_<n>.wav, as a corpus laid out Angry/ Happy/ Neutral/ Sad/ with speaker ids in the names."""
    root = tmp_path / "folders"
    for label in ("Angry", "Happy", "Neutral", "Sad"):
        for spk in SPEAKERS:
            for rep in range(2):
                make_audio(root / label / f"{spk}_{rep}.wav", seconds=0.1)
    (root / "Angry" / "notes.txt").write_text("not audio")
    (root / "README.wav").parent.mkdir(exist_ok=True)
    make_audio(root / "README.wav", seconds=0.1)  # a file outside any label folder
    return root


def prepare(argv: list[str], out: Path) -> int:
    return main([*argv, "--out-dir", str(out), "--no-progress"])


def assert_speaker_independent(out: Path, name: str) -> dict:
    """The check every corpus's folds pass (tests/test_data_folds.py, test_data_real.py), on a user corpus:
    no speaker in two of train/val/test of a fold, every labelled speaker tested exactly once, and every
    labelled utterance tested exactly once."""
    df = read_manifest(out / name / "manifest.csv")
    doc = read_folds(out / name / "folds.json")
    check_folds(doc, df, label_column=doc["label_column"])
    tested = [k for f in doc["folds"] for k in df.loc[df["speaker"].isin(f["test"]), "key"]]
    assert sorted(tested) == sorted(df.loc[df[doc["label_column"]] != "", "key"])
    return doc


def test_csv_corpus_any_label_set(csv_corpus, tmp_path: Path, capsys) -> None:
    root, meta, rows = csv_corpus
    out = tmp_path / "m"
    assert prepare(["--csv", str(meta), "--name", "mine", "--root", str(root)], out) == 0
    printed = capsys.readouterr().out
    assert "mine: 24 rows, 4 speakers" in printed and "classes: 3 (freude 8, trauer 8, wut 8)" in printed
    assert "folds: 4 (loso)" in printed
    files = sorted(p.name for p in (out / "mine").iterdir())
    assert files == ["config.yaml", "corpus.json", "folds.json", "manifest.csv", "skipped.csv", "summary.json"]
    df = read_manifest(out / "mine" / "manifest.csv")
    row = df.set_index("key").loc["audio/s01/wut_0"]
    assert (row["path"], row["speaker"], row["gender"], row["raw_label"], row["emotion"], row["label"]) == \
        ("audio/s01/wut_0.wav", "s01", "F", "Wut", "wut", "")  # not one of the 4-class set
    summary = json.loads((out / "mine" / "summary.json").read_text())
    assert summary["class_names"] == ["freude", "trauer", "wut"] and summary["n_labelled"] == 24
    assert summary["protocol"] == "loso" and summary["n_folds"] == 4 and summary["speaker_independent"] is True
    assert str(tmp_path) not in (out / "mine" / "summary.json").read_text()  # no machine paths in the summary
    doc = assert_speaker_independent(out, "mine")
    assert doc["label_column"] == "emotion" and doc["folds"][0] == {
        "name": "s01", "train": ["s03", "s04"], "val": ["s02"], "test": ["s01"]}
    import yaml

    cfg = yaml.safe_load((out / "mine" / "config.yaml").read_text())
    assert cfg == {"data": {"corpus": "mine", "manifest_dir": str(out), "class_names": ["freude", "trauer", "wut"],
                            "label_column": "emotion"}}
    # usable by name: the root resolves from the definition, <NAME>_ROOT overrides it
    CUSTOM.pop("mine", None)
    assert ensure_registered("mine", out) is not None and "mine" not in CORPORA
    assert resolve_root("mine") == root.resolve() and get_corpus("mine").env_var == "MINE_ROOT"


def test_csv_label_map_classes_and_kfold(csv_corpus, tmp_path: Path, capsys) -> None:
    root, meta, _ = csv_corpus
    out = tmp_path / "m"
    assert prepare(["--csv", str(meta), "--name", "mapped", "--root", str(root), "--label-map",
                    "Wut=angry,freude=happy,Trauer=", "--n-folds", "2"], out) == 0
    df = read_manifest(out / "mapped" / "manifest.csv")
    assert sorted(set(df["emotion"])) == ["angry", "happy"] and sorted(set(df["label"])) == ["angry", "happy"]
    skipped = read_skipped(out / "mapped" / "skipped.csv")
    assert len(skipped) == 8 and set(skipped["reason"]) == {"label 'Trauer' dropped by --label-map"}
    doc = assert_speaker_independent(out, "mapped")
    assert doc["protocol"] == "grouped_kfold" and [f["name"] for f in doc["folds"]] == ["s01-s02", "s03-s04"]
    assert doc["folds"][0] == {"name": "s01-s02", "train": ["s04"], "val": ["s03"], "test": ["s01", "s02"]}
    # --classes orders the classes and keeps only those
    assert prepare(["--csv", str(meta), "--name", "ordered", "--root", str(root), "--classes", "wut,trauer"], out) == 0
    assert json.loads((out / "ordered" / "corpus.json").read_text())["class_names"] == ["wut", "trauer"]
    reasons = set(read_skipped(out / "ordered" / "skipped.csv")["reason"])
    assert reasons == {"label 'freude' is not one of --classes wut,trauer"}


def test_csv_rows_skipped_with_reasons(csv_corpus, tmp_path: Path, make_audio) -> None:
    root, meta, rows = csv_corpus
    (root / "audio" / "broken.wav").write_bytes(b"RIFF not really")
    extra = [{"path": "audio/missing.wav", "label": "Wut", "speaker": "s01"},
             {"path": "audio/broken.wav", "label": "Wut", "speaker": "s01"},
             {"path": "audio/s01/wut_0.wav", "label": "Wut", "speaker": "s01"},  # listed twice
             {"path": "audio/s02/wut_0.wav", "label": "", "speaker": "s02"},
             {"path": "audio/s02/wut_1.wav", "label": "Wut", "speaker": ""}]
    write_csv(meta, rows[:-2] + extra, ["path", "label", "speaker"])
    out = tmp_path / "m"
    assert prepare(["--csv", str(meta), "--name", "holes", "--root", str(root)], out) == 0
    skipped = read_skipped(out / "holes" / "skipped.csv").set_index("path")["reason"].to_dict()
    assert skipped["audio/missing.wav"] == "listed in meta.csv line 24 but the file is missing"
    assert skipped["audio/broken.wav"].startswith("not a readable audio file")
    assert "duplicate utterance key" in skipped["audio/s01/wut_0.wav"]
    assert skipped["audio/s02/wut_0.wav"] == "no label (meta.csv line 27)"
    assert skipped["audio/s02/wut_1.wav"] == "no speaker id (meta.csv line 28) while other rows have one"
    summary = json.loads((out / "holes" / "summary.json").read_text())
    assert summary["n_skipped"] == 5 and summary["n_rows"] == 22


def test_folder_corpus_speaker_regex(folder_corpus: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "m"
    assert prepare(["--folders", str(folder_corpus), "--name", "fold4", "--speaker-regex", r"^(s\d+)_"], out) == 0
    printed = capsys.readouterr().out
    assert "classes: 4 (angry 8, happy 8, neutral 8, sad 8)" in printed and "folds: 4 (loso)" in printed
    df = read_manifest(out / "fold4" / "manifest.csv")
    assert len(df) == 32 and sorted(set(df["speaker"])) == SPEAKERS
    assert set(df["label"]) == {"angry", "happy", "neutral", "sad"}  # the 4-class set: usable with registered corpora
    assert set(df["raw_label"]) == {"Angry", "Happy", "Neutral", "Sad"}
    skipped = read_skipped(out / "fold4" / "skipped.csv").set_index("path")["reason"].to_dict()
    assert skipped["README.wav"] == "not inside a label folder"
    assert skipped["Angry/notes.txt"].startswith("extension .txt is not an audio format")
    assert_speaker_independent(out, "fold4")
    # a regex that misses a file skips it, saying so
    (folder_corpus / "Sad" / "anonymous.wav").write_bytes((folder_corpus / "Sad" / "s01_0.wav").read_bytes())
    assert prepare(["fold4"], out) == 0  # rebuilt by name, with the options it was prepared with
    skipped = read_skipped(out / "fold4" / "skipped.csv").set_index("path")["reason"].to_dict()
    assert skipped["Sad/anonymous.wav"] == r"--speaker-regex '^(s\\d+)_' finds no speaker id in 'anonymous.wav'"


def test_folder_corpus_without_speakers_has_no_folds(folder_corpus: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "m"
    assert prepare(["--folders", str(folder_corpus), "--name", "anon"], out) == 0
    printed = capsys.readouterr().out
    assert "no speaker-independent folds can be built" in printed and "--group-by session" in printed
    assert "cross --train <corpus> --test anon" in printed
    assert not (out / "anon" / "folds.json").exists() and (out / "anon" / "manifest.csv").exists()
    summary = json.loads((out / "anon" / "summary.json").read_text())
    assert summary["n_folds"] == 0 and "no speaker ids (no --speaker-regex)" in summary["no_folds_reason"]
    # cv refuses it with that reason, before any training
    from mtl_aug.evaluation import cv

    with pytest.raises(SystemExit, match="no speaker-independent folds can be built"):
        cv.run_cv("anon", "stl", [0], manifest_dir=str(out))
    # asking for speaker folds explicitly is an error, not a silent no-folds corpus
    assert prepare(["--folders", str(folder_corpus), "--name", "anon", "--protocol", "loso"], out) == 2
    assert "--protocol loso: anon: no speaker ids" in capsys.readouterr().err


def test_folders_grouped_by_session_say_they_are_not_speaker_independent(tmp_path: Path, make_audio, capsys) -> None:
    root = tmp_path / "sessions"
    for label in ("calm", "tense"):
        for sess in ("day1", "day2", "day3"):
            for spk in ("a", "b"):  # every speaker in every session
                make_audio(root / label / sess / f"{spk}.wav", seconds=0.1)
    out = tmp_path / "m"
    argv = ["--folders", str(root), "--name", "sess", "--session-regex", r"^(day\d)/", "--group-by", "session"]
    assert prepare(argv, out) == 0
    printed = capsys.readouterr().out
    assert "folds grouped by session: speaker independence unknown (no speaker ids)" in printed
    doc = read_folds(out / "sess" / "folds.json")
    assert doc["group_by"] == "session" and [f["test"] for f in doc["folds"]] == [["day1"], ["day2"], ["day3"]]
    df = read_manifest(out / "sess" / "manifest.csv")
    check_folds(doc, df.assign(speaker=df["session"]), label_column="emotion")  # disjoint over sessions
    # with speaker ids too, the folds over sessions are shown to mix speakers
    assert prepare([*argv, "--speaker-regex", r"/(\w)\.wav$"], out) == 0
    printed = capsys.readouterr().out
    assert "NOT speaker-independent" in printed and "warning: folds grouped by session" in printed
    doc = read_folds(out / "sess" / "folds.json")
    assert doc["speaker_independent"] is False and "speakers a, b in both train and val" in doc["speaker_leaks"][0]
    from mtl_aug.evaluation.cv import protocol_name

    assert "session-grouped k-fold (3 folds; NOT speaker-independent)" in protocol_name("sess", 3, str(out), ["calm", "tense"])


def test_csv_split_column(csv_corpus, tmp_path: Path) -> None:
    root, meta, rows = csv_corpus
    split = {"s01": "train", "s02": "train", "s03": "dev", "s04": "test"}
    write_csv(meta, [{**r, "split": split[r["speaker"]]} for r in rows])
    out = tmp_path / "m"
    assert prepare(["--csv", str(meta), "--name", "given", "--root", str(root)], out) == 0
    doc = read_folds(out / "given" / "folds.json")
    assert doc["protocol"] == "split" and doc["folds"] == [{"name": "split", "train": ["train"], "val": ["val"],
                                                            "test": ["test"]}]
    assert doc["speaker_independent"] is True and doc["groups"]["audio/s03/wut_0"] == "val"
    write_csv(meta, [{**r, "split": "training"} for r in rows])
    assert prepare(["--csv", str(meta), "--name", "given", "--root", str(root)], out) == 2


@pytest.mark.parametrize("case", ["missing_column", "outside_root", "absolute_outside", "unknown_label_in_map",
                                  "unknown_class", "registered_name", "config_name", "bad_name", "bad_split", "no_csv",
                                  "bad_regex", "too_few_classes"])
def test_clear_errors(case: str, csv_corpus, folder_corpus, tmp_path: Path, capsys) -> None:
    root, meta, rows = csv_corpus
    args = ["--csv", str(meta), "--name", "oops", "--root", str(root)]
    expect = {
        "missing_column": "missing column 'speaker' (its columns: path, label, gender; required: path, label, speaker",
        "outside_root": "1 path(s) outside the root",
        "absolute_outside": "1 path(s) outside the root",
        "unknown_label_in_map": "--label-map: 'Angst' is not a label of",
        "unknown_class": "--classes: 'ekel' is not a label of",
        "registered_name": "--name 'emodb' collides with the registered corpus 'emodb'",
        "config_name": "--name 'ravdess_calm' collides with the corpus config",
        "bad_name": "--name '1st corpus': use letters, digits",
        "bad_split": "column 'split' must be one of train",
        "no_csv": "no such file",
        "bad_regex": "--speaker-regex '(' is not a valid regular expression",
        "too_few_classes": "needs at least 2 classes",
    }[case]
    if case == "missing_column":
        write_csv(meta, rows, ["path", "label", "gender"])
    elif case == "outside_root":
        write_csv(meta, rows[:-1] + [{**rows[-1], "path": "../elsewhere/x.wav"}])
        expect += f" {root.resolve()} (paths are relative to --root): meta.csv line 25: '../elsewhere/x.wav'"
    elif case == "absolute_outside":
        write_csv(meta, rows[:-1] + [{**rows[-1], "path": "/etc/passwd"}])
    elif case == "unknown_label_in_map":
        args += ["--label-map", "Wut=angry,Angst=fear"]
    elif case == "unknown_class":
        args += ["--classes", "wut,ekel"]
    elif case in ("registered_name", "config_name", "bad_name"):
        args[3] = {"registered_name": "emodb", "config_name": "ravdess_calm", "bad_name": "1st corpus"}[case]
    elif case == "bad_split":
        write_csv(meta, [{**r, "split": "train" if i else "holdout"} for i, r in enumerate(rows)])
        expect += ", val (valid, validation, dev), test: meta.csv line 2: 'holdout'"
    elif case == "no_csv":
        args[1] = str(tmp_path / "nope.csv")
    elif case == "bad_regex":
        args = ["--folders", str(folder_corpus), "--name", "oops", "--speaker-regex", "("]
    elif case == "too_few_classes":
        args += ["--classes", "wut"]
    assert prepare(args, tmp_path / "m") == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    assert err.startswith("error: ") and expect in err, err
    assert not (tmp_path / "m" / "oops" / "manifest.csv").exists()


def test_usage_errors(csv_corpus, folder_corpus, tmp_path: Path) -> None:
    root, meta, _ = csv_corpus
    for argv in (["--csv", str(meta)],  # no --name
                 ["--csv", str(meta), "--folders", str(folder_corpus), "--name", "x"],
                 ["emodb", "--csv", str(meta), "--name", "x"],
                 ["--csv", str(meta), "--name", "x", "--speaker-regex", "(.)"],
                 ["never_prepared"]):
        with pytest.raises(SystemExit):
            prepare(argv, tmp_path / "m")


def test_parse_mapping(tmp_path: Path) -> None:
    assert parse_mapping("Wut=angry, Freude = happy,Ekel=") == {"Wut": "angry", "Freude": "happy", "Ekel": ""}
    (tmp_path / "map.yaml").write_text("Wut: angry\nEkel:\n")
    assert parse_mapping(str(tmp_path / "map.yaml")) == {"Wut": "angry", "Ekel": ""}
    with pytest.raises(CustomCorpusError, match="'Wut' is not FROM=TO"):
        parse_mapping("Wut")


def test_balanced_kfold_sizes_and_validation() -> None:
    folds = balanced_kfold([f"{i:02d}" for i in range(1, 10)], 4)  # 9 speakers: 3 + 2 + 2 + 2
    assert [f["test"] for f in folds] == [["01", "02", "03"], ["04", "05"], ["06", "07"], ["08", "09"]]
    assert [f["val"] for f in folds] == [["04"], ["06"], ["08"], ["01"]]
    check_folds(folds, pd.DataFrame({"speaker": [f"{i:02d}" for i in range(1, 10)], "label": "x"}))
    with pytest.raises(CustomCorpusError, match="without training data"):
        balanced_kfold(["a", "b", "c"], 2)
    with pytest.raises(CustomCorpusError, match="needs 2 .. 3"):
        balanced_kfold(["a", "b", "c"], 4)


def test_test_labels_map_onto_the_trained_classes_or_are_refused() -> None:
    classes = ["angry", "happy", "neutral", "sad"]
    values = pd.Series(["wut", "freude", "trauer", "wut", "ekel", ""])
    with pytest.raises(LabelMapError, match=r"labels 'ekel' \(1\), 'freude' \(1\), 'trauer' \(1\), 'wut' \(2\) of "
                                            r"its column 'emotion' map onto none of the trained classes"):
        map_test_labels(values, classes, None, corpus="mine", column="emotion", explicit=False)
    mapping = {"Wut": "Angry", "freude": "happy", "trauer": "sad", "ekel": ""}  # case-insensitive; "" drops
    got = map_test_labels(values, classes, mapping, corpus="mine", column="emotion", explicit=True)
    assert got.tolist() == ["angry", "happy", "sad", "angry", "", ""]
    with pytest.raises(LabelMapError, match="'angst' is not a label of its column 'emotion'"):
        map_test_labels(values, classes, {**mapping, "angst": "sad"}, corpus="mine", column="emotion", explicit=True)
    with pytest.raises(LabelMapError, match="ekel=disgust maps onto no trained class"):
        map_test_labels(values, classes, {**mapping, "ekel": "disgust"}, corpus="mine", column="emotion", explicit=True)
    with pytest.raises(LabelMapError, match=r"label 'ekel' \(1\) .* `cross ... --label-map ekel=angry` \(`ekel=` drops it\)"):
        map_test_labels(values, classes, {k: v for k, v in mapping.items() if k != "ekel"}, corpus="mine",
                        column="emotion", explicit=True)


def test_config_args_use_the_corpus_config_written_by_prepare(csv_corpus, tmp_path: Path) -> None:
    from mtl_aug.recipes import recipe_args as config_args

    root, meta, _ = csv_corpus
    out = tmp_path / "m"
    assert prepare(["--csv", str(meta), "--name", "mine", "--root", str(root)], out) == 0
    args = config_args("mine", "stl", out)
    assert args[3] == str(out / "mine" / "config.yaml") and args[5].endswith("experiments/systems/stl.yaml")
    assert config_args("emodb", "stl", out)[3].endswith("experiments/corpora/emodb.yaml")
    with pytest.raises(SystemExit, match="nor .*never/config.yaml of your own corpus"):
        config_args("never", "stl", out)


def test_levels_of_an_own_corpus_follow_its_classes(csv_corpus, tmp_path: Path, capsys) -> None:
    from mtl_aug.data import levels

    root, meta, _ = csv_corpus
    out = tmp_path / "m"
    assert prepare(["--csv", str(meta), "--name", "mine", "--root", str(root)], out) == 0
    CUSTOM.pop("mine", None)  # as in a fresh process: found by name in the manifest dir
    capsys.readouterr()
    assert levels.main(["mine", "--manifest-dir", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "| freude | 8 |" in printed and "| wut | 8 |" in printed and "angry" not in printed
