"""Length-aware collate: zero-pads waves to the longest row and carries the true lengths."""

from __future__ import annotations

import torch


def collate_utterances(rows: list[dict]) -> dict:
    lengths = torch.tensor([r["wave"].numel() for r in rows], dtype=torch.long)
    wave = torch.zeros(len(rows), int(lengths.max()), dtype=torch.float32)
    for i, r in enumerate(rows):
        wave[i, : lengths[i]] = r["wave"]
    batch = {
        "wave": wave,
        "lengths": lengths,
        "label": torch.tensor([r["label"] for r in rows], dtype=torch.long),
        "key": [r["key"] for r in rows],
        "speaker": [r["speaker"] for r in rows],
        "corpus": [r.get("corpus", "") for r in rows],
    }
    if "functionals" in rows[0]:
        batch["functionals"] = torch.stack([r["functionals"] for r in rows]).float()
    return batch
