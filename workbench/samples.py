"""The sample claim documents in data/claims/, with the outcome each is expected to have
(`wb.samples`).

    wb.samples.pick(20)                  # 20 spread over the whole set (every kind in a batch)
    wb.samples.pick(status="review")     # those expected to wait for a human
    wb.samples.get("claim-001")          # one by id
    wb.samples.table()                   # all of them, with expected outcomes
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import pandas as pd

DATA_DIR = Path(__file__).resolve().parent.parent / "data"


__all__ = ["Sample", "get", "pick", "table"]


@dataclass(frozen=True)
class Sample:
    """A sample claim: its id, file, text (`document`), the fields and outcome expected of it
    (`expected`), and its expected status under analyst prompt v1 and v2."""

    id: str
    file: str
    document: str = field(repr=False)
    expected: dict[str, Any] = field(repr=False)
    status_v1: str = ""
    status_v2: str = ""
    notes: str = ""


@lru_cache(maxsize=1)
def _all(data_dir: Path = DATA_DIR) -> tuple[Sample, ...]:
    manifest = json.loads((data_dir / "claims" / "manifest.json").read_text())
    return tuple(
        Sample(
            id=entry["id"],
            file=entry["file"],
            document=(data_dir / "claims" / entry["file"]).read_text(),
            expected=entry.get("expected", {}),
            status_v1=entry.get("status_v1", ""),
            status_v2=entry.get("status_v2", ""),
            notes=entry.get("notes", ""),
        )
        for entry in manifest
    )


def pick(n: int | None = None, *, status: str | None = None) -> list[Sample]:
    """`n` sample claims (all by default) spread evenly over the manifest, so that a small batch
    holds every kind; optionally only those expected to end with `status` (paid, rejected,
    review, invalid) under the production prompts (analyst v1).

    Example:
        >>> [s.id for s in wb.samples.pick(3, status="paid")]
    """
    chosen = [s for s in _all() if status is None or s.status_v1 == status]
    if status is not None and not chosen:
        known = sorted({s.status_v1 for s in _all()})
        raise ValueError(f"No sample is expected to end {status!r}. Known: {', '.join(known)}.")
    if n is None or n >= len(chosen):
        return chosen
    if n < 0:
        raise ValueError(f"n must be positive; got {n}.")
    return [chosen[i * len(chosen) // n] for i in range(n)]


def get(sample_id: str) -> Sample:
    """One sample by id.

    Example:
        >>> print(wb.samples.get("claim-001").document)
    """
    for s in _all():
        if s.id == sample_id:
            return s
    raise KeyError(f"No sample {sample_id!r}; see wb.samples.table() for the ids.")


def table() -> pd.DataFrame:
    """Every sample: id, file, expected status under analyst v1 and v2, notes.

    Example:
        >>> wb.samples.table().groupby("expected_v1").size()
    """
    from .frames import as_table

    frame = pd.DataFrame(
        [
            {
                "id": s.id,
                "file": s.file,
                "expected_v1": s.status_v1,
                "expected_v2": s.status_v2,
                "notes": s.notes,
            }
            for s in _all()
        ]
    )
    return as_table(frame)
