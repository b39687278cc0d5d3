"""Text for results (core layer): markdown tables, confusion sections, provenance lines, terminal confusion tables."""

from __future__ import annotations

from typing import Sequence


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[object]], align: str | None = None) -> str:
    """A GitHub-flavoured markdown table; ``align`` is one character per column (l/r/c), default l then r."""
    align = align or ("l" + "r" * (len(header) - 1))
    marks = {"l": ":--", "r": "--:", "c": ":-:"}
    lines = ["| " + " | ".join(str(h) for h in header) + " |",
             "|" + "|".join(marks[a] for a in align) + "|"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def confusion_lines(confusion: Sequence[Sequence[int]] | None, class_names: Sequence[str], what: str) -> list[str]:
    """A report's confusion section (rows = true class), ``what`` naming the predictions it counts; [] without one."""
    if not confusion:
        return []
    return [f"Confusion (counts, {what}; rows = true):", "",
            markdown_table(["true \\ pred", *class_names], [[n, *row] for n, row in zip(class_names, confusion)]), ""]


def provenance(meta: dict) -> str:
    """The command/commit/date/machine lines every report ends with."""
    lines = [f"- command: `{meta.get('command', '')}`",
             *([f"- run in: `{meta['cwd']}`"] if meta.get("cwd") else []),
             f"- git commit: `{meta.get('git_commit', '')}`{' (uncommitted changes)' if meta.get('git_dirty') else ''}",
             f"- date: {meta.get('date', '')}",
             *([f"- runs trained at commit(s): {', '.join(f'`{c[:12]}`' for c in meta['trained_at'])}"]
               if meta.get("trained_at") else []),
             *([f"- runs trained on: {'; '.join(meta['trained_on'])}"] if meta.get("trained_on") else []),
             f"- machine: {meta.get('machine', '')}"]
    return "\n".join(lines)


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


def val_note(result: dict) -> str:
    """The validation UAR of the tested checkpoint: the monitored best epoch's, or the final weights' (default)."""
    best, final = result.get("best_val_uar"), result.get("final_val_uar")
    if best is None and final is not None:
        return f"final val UAR {final:.4f}"
    return f"best val UAR {'–' if best is None else f'{best:.4f}'}"
