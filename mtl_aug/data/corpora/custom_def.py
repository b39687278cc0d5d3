"""A user's own corpus (see :mod:`mtl_aug.data.corpora.custom`): its definition (what ``prepare --csv/--folders``
was asked), its errors, and the parsing of its options."""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

DEFINITION = "corpus.json"
CONFIG = "config.yaml"
REQUIRED_COLUMNS = ("path", "label", "speaker")
OPTIONAL_COLUMNS = ("gender", "session", "split")
SPLITS = {"train": "train", "val": "val", "valid": "val", "validation": "val", "dev": "val", "test": "test"}
NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_-]*$")
RESERVED = {"cross": "experiments/results/cross/ holds the cross-corpus results", "all": "the fold name 'all'"}


class CustomCorpusError(ValueError):
    """A user corpus that cannot be prepared as asked; the message names the file, row, column or option."""


@dataclass
class CustomCorpus:
    """What ``prepare --csv/--folders`` was asked: enough to rebuild the corpus and to use it by name."""

    name: str
    type: str  # "csv" | "folders"
    root: str  # absolute; overridden at run time by --root / <NAME>_ROOT
    csv: str | None = None  # absolute path of the CSV (type csv)
    speaker_regex: str | None = None  # folders: speaker id from the path below the label folder
    session_regex: str | None = None  # folders: session from the path below the label folder
    label_map: dict[str, str] = field(default_factory=dict)  # raw label -> class ("" drops it)
    classes: list[str] | None = None  # class order (and the only classes kept); default: sorted labels
    protocol: str = "auto"  # auto | loso | kfold | split | none
    n_folds: int | None = None  # kfold
    group_by: str = "speaker"  # speaker | session: the column folds keep apart
    # filled by prepare:
    class_names: list[str] = field(default_factory=list)
    label_column: str = "emotion"
    no_folds_reason: str | None = None

    @property
    def env_var(self) -> str:
        return env_var(self.name)

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=1) + "\n"

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "CustomCorpus":
        known = {k: v for k, v in d.items() if k in cls.__dataclass_fields__}
        return cls(**known)


def env_var(name: str) -> str:
    """``mycorpus`` -> ``MYCORPUS_ROOT`` (as ``EMODB_ROOT`` for emodb)."""
    return re.sub(r"[^A-Z0-9]", "_", name.upper()) + "_ROOT"


# -- options -------------------------------------------------------------------------------------------
def parse_mapping(text: str | None, what: str = "--label-map") -> dict[str, str]:
    """``"Wut=angry,Freude=happy,Ekel="`` or a .json/.yaml file of the same mapping -> dict (``""`` = drop)."""
    if not text:
        return {}
    path = Path(text)
    if path.suffix.lower() in (".json", ".yaml", ".yml") and path.is_file():
        import yaml

        data = yaml.safe_load(path.read_text()) or {}
        if not isinstance(data, dict):
            raise CustomCorpusError(f"{what} {path}: expected a mapping 'label: class', got {type(data).__name__}")
        return {str(k).strip(): "" if v is None else str(v).strip() for k, v in data.items()}
    out: dict[str, str] = {}
    for part in text.split(","):
        if not part.strip():
            continue
        if "=" not in part:
            raise CustomCorpusError(f"{what}: {part.strip()!r} is not FROM=TO (e.g. {what} Wut=angry,Ekel= ; an "
                                    "empty TO drops that label; or give a .json/.yaml file)")
        k, v = part.split("=", 1)
        out[k.strip()] = v.strip()
    return out
