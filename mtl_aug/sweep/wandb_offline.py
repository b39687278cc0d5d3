"""Read what an offline W&B run logged, without a server: its ``run-<id>.wandb`` transaction log.

wandb has no public reader for this file (``wandb sync`` uploads it). The format is a LevelDB-style
log: a 7-byte header (``:W&B``, magic ``0xBEE1``, version 0), then 32 KiB blocks of records, each
``crc32 (4) | length (2, LE) | type (1: full, 2: first, 3: middle, 4: last)`` + data, a block's last
< 7 bytes being padding; each full record is a ``wandb.proto.wandb_internal_pb2.Record``.
The offline runner reads a trial's metric from here when the program wrote no result file (e.g. a
sweep whose program logs ``val/uar`` through a WandbLogger); the tests use it to check that the
objective logs ``val_uar_mean`` exactly once.
"""

from __future__ import annotations

import json
import struct
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

BLOCK = 32768
HEADER = 7
FILE_MAGIC = b":W&B"


def _payloads(path: Path) -> Iterator[bytes]:
    data = Path(path).read_bytes()
    if data[:4] != FILE_MAGIC:
        raise ValueError(f"{path}: not a W&B transaction log")
    pos, pending = HEADER, b""
    while pos + HEADER <= len(data):
        left_in_block = BLOCK - pos % BLOCK
        if left_in_block < HEADER:  # block trailer padding
            pos += left_in_block
            continue
        _crc, length, kind = struct.unpack("<IHB", data[pos:pos + HEADER])
        if length == 0 and kind == 0:  # zero padding
            pos += left_in_block
            continue
        chunk = data[pos + HEADER:pos + HEADER + length]
        pos += HEADER + length
        if kind == 1:
            yield chunk
        elif kind == 2:
            pending = chunk
        elif kind == 3:
            pending += chunk
        elif kind == 4:
            yield pending + chunk
            pending = b""


def records(path: str | Path) -> Iterator[Any]:
    """Every record (``wandb_internal_pb2.Record``) of a ``run-*.wandb`` file."""
    from wandb.proto import wandb_internal_pb2 as pb

    for payload in _payloads(Path(path)):
        rec = pb.Record()
        rec.ParseFromString(payload)
        yield rec


def run_file(run_dir: str | Path) -> Path:
    files = sorted(Path(run_dir).glob("run-*.wandb"))
    if not files:
        raise FileNotFoundError(f"no run-*.wandb in {run_dir}")
    return files[0]


def history(run_dir: str | Path) -> list[dict[str, Any]]:
    """The run's ``wandb.log`` calls, one dict per call (``_step``/``_timestamp``/``_runtime`` included)."""
    out = []
    for rec in records(run_file(run_dir)):
        if rec.WhichOneof("record_type") == "history":
            row = {}
            for item in rec.history.item:
                key = item.key or "/".join(item.nested_key)
                row[key] = json.loads(item.value_json)
            out.append(row)
    return out


def run_info(run_dir: str | Path) -> dict[str, Any]:
    """id, group, project, job type and config of the run (from its ``run`` record)."""
    for rec in records(run_file(run_dir)):
        if rec.WhichOneof("record_type") == "run":
            r = rec.run
            config = {item.key or "/".join(item.nested_key): json.loads(item.value_json) for item in r.config.update}
            return {"id": r.run_id, "group": r.run_group, "project": r.project, "job_type": r.job_type,
                    "name": r.display_name, "config": config}
    raise ValueError(f"{run_dir}: no run record")


def is_complete(run_dir: str | Path) -> bool:
    """Whether the run's ``exit`` record is written (W&B's service may still be writing after the program
    returned, unless it called ``wandb.teardown()``)."""
    try:
        return any(rec.WhichOneof("record_type") == "exit" for rec in records(run_file(run_dir)))
    except (OSError, ValueError):
        return False


def wait_complete(run_dir: str | Path, timeout: float = 15.0) -> bool:
    deadline = time.time() + timeout
    while not is_complete(run_dir):
        if time.time() > deadline:
            return False
        time.sleep(0.2)
    return True


def offline_runs(wandb_dir: str | Path) -> list[Path]:
    """``offline-run-*`` directories under a ``wandb`` directory (oldest first)."""
    return sorted(p for p in Path(wandb_dir).glob("offline-run-*") if p.is_dir())


def last_value(run_dir: str | Path, key: str) -> Any:
    """The last value logged under ``key`` (what W&B's run summary shows by default), or None."""
    value = None
    for row in history(run_dir):
        if key in row:
            value = row[key]
    return value
