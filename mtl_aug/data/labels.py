"""Labels of a cross-corpus test set: mapped onto the trained classes, or refused.

A model trained on corpus A knows A's classes (``data.class_names``). Testing it on corpus B reads B's own
class column (``emotion`` for a user corpus, ``label`` = the 4-class set for a registered one; or
``data.test_label_column``), renames values with ``data.test_label_map`` (``cross --label-map``; default:
the training ``label_map``), and refuses the test set when a label of B maps onto no class of A, naming
each such label and its count: a silently shrunken test set would report a UAR over other utterances than
the user believes. Mapping a label to "" drops it on purpose.
"""

from __future__ import annotations

from collections import Counter
from typing import Sequence

import pandas as pd


class LabelMapError(ValueError):
    """A label mapping that does not fit the corpora it is used with; the message says what to change."""


def _listing(counts: Counter, limit: int = 12) -> str:
    items = [f"{k!r} ({n})" for k, n in sorted(counts.items())]
    return ", ".join(items[:limit]) + (" ..." if len(items) > limit else "")


def fold_case(label_map: dict[str, str], labels: set[str], classes: Sequence[str]) -> dict[str, str]:
    """``label_map`` with keys matched to ``labels`` and targets to ``classes`` ignoring case when they do not match
    exactly (a user corpus's classes are lower case: "ANG=angry" still means its "ang")."""
    by_lower_label = {v.lower(): v for v in labels}
    by_lower_class = {c.lower(): c for c in classes}
    out = {}
    for k, v in label_map.items():
        key = k if k in labels else by_lower_label.get(k.lower(), k)
        out[key] = v if (not v or v in classes) else by_lower_class.get(v.lower(), v)
    return out


def map_test_labels(values: pd.Series, class_names: Sequence[str], label_map: dict[str, str] | None, *,
                    corpus: str, column: str, explicit: bool) -> pd.Series:
    """Each row's class name after ``label_map`` ("" = not in the test set: no label, or dropped on purpose).

    ``explicit``: the map was given for this test corpus, so each of its keys must be a label of it (a typo
    would otherwise leave the label it meant unmapped, or silently do nothing).
    Raises :class:`LabelMapError` for unknown keys, targets outside ``class_names``, and labels that map to
    no class.
    """
    classes = list(class_names)
    label_map = {str(k): "" if v is None else str(v) for k, v in (label_map or {}).items()}
    values = values.astype(str)
    present = Counter(v for v in values if v)
    label_map = fold_case(label_map, set(present), classes)
    if explicit:
        unknown = sorted(set(label_map) - set(present))
        if unknown:
            raise LabelMapError(f"label map for test corpus {corpus!r}: {', '.join(map(repr, unknown))} "
                                f"{'is not a label' if len(unknown) == 1 else 'are not labels'} of its column "
                                f"{column!r} (its labels: {_listing(present)})")
    targets = {k: v for k, v in label_map.items() if v and v not in classes}
    if targets and explicit:
        raise LabelMapError(f"label map for test corpus {corpus!r}: {', '.join(f'{k}={v}' for k, v in targets.items())} "
                            f"map{'s' if len(targets) == 1 else ''} onto no trained class (the model's classes: "
                            f"{', '.join(classes)})")
    mapped = values.map(lambda v: label_map.get(v, v) if v else "")
    unmapped = Counter(v for v, m in zip(values, mapped) if m and m not in classes)
    if unmapped:
        example = sorted(unmapped)[0]
        raise LabelMapError(
            f"test corpus {corpus!r}: label{'s' if len(unmapped) > 1 else ''} {_listing(unmapped)} of its column "
            f"{column!r} map{'' if len(unmapped) > 1 else 's'} onto none of the trained classes "
            f"({', '.join(classes)}), so the test set is refused. Map each onto a class, e.g. "
            f"`cross ... --label-map {example}={classes[0]}` (`{example}=` drops it), or read another column with "
            "--test-label-column (LightningCLI: --data.test_label_map / --data.test_label_column)")
    return mapped
