"""The synthetic claim documents in data/claims/, with the outcome each is expected to have."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import pandas as pd

DATA_DIR = Path(__file__).resolve().parent.parent / "data"


@dataclass(frozen=True)
class Sample:
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


def samples(n: int | None = None, *, status: str | None = None) -> list[Sample]:
    """`n` sample claims (all by default) spread evenly over the manifest, so that a small batch
    holds every kind; optionally only those expected to end with `status` (paid, rejected,
    review, invalid) under the production prompts."""
    chosen = [s for s in _all() if status is None or s.status_v1 == status]
    if status is not None and not chosen:
        known = sorted({s.status_v1 for s in _all()})
        raise ValueError(f"No sample is expected to end {status!r}. Known: {', '.join(known)}.")
    if n is None or n >= len(chosen):
        return chosen
    if n < 0:
        raise ValueError(f"n must be positive; got {n}.")
    return [chosen[i * len(chosen) // n] for i in range(n)]


def sample(sample_id: str) -> Sample:
    for s in _all():
        if s.id == sample_id:
            return s
    raise KeyError(f"No sample {sample_id!r}; see workbench.samples_table() for the ids.")


def samples_table() -> pd.DataFrame:
    return pd.DataFrame(
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
