"""Human-readable text for results: confusion matrices and aligned tables."""

from __future__ import annotations


def confusion_table(confusion: list[list[int]], class_names: list[str]) -> str:
    """Rows = true class, columns = predicted class, with per-class recall at the end of each row."""
    width = max(8, *(len(c) for c in class_names))
    head = "true \\ pred".ljust(width) + "".join(c[:width].rjust(width + 1) for c in class_names) + "  recall".rjust(9)
    lines = [head]
    for name, row in zip(class_names, confusion):
        total = sum(row)
        recall = row[class_names.index(name)] / total if total else float("nan")
        lines.append(name.ljust(width) + "".join(str(v).rjust(width + 1) for v in row) + f"{recall:9.3f}")
    return "\n".join(lines)
