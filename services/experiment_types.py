"""The types of an experiment, light enough for the workbench to import (no agents, no
Restate): what `Experiment.run` takes, what its state keeps, and the plan of its claims. The
workflows are in `experiment.py`."""

from __future__ import annotations

import json
from typing import Any, Literal

from pydantic import BaseModel, Field, field_validator

from . import names
from .models import ClaimOutcome


class Variant(BaseModel):
    """What a variant changes: a prompt label, and/or pinned versions `{prompt name: version}`."""

    label: str | None = None
    versions: dict[str, int] = Field(default_factory=dict)


class ExperimentDocument(BaseModel):
    """One document of an experiment: its id (in claim ids), its text, and what is expected of
    it (kept for the workbench's comparison; the claims never see it)."""

    id: str
    text: str
    expected: dict[str, Any] | None = None
    dataset_item_id: str | None = None
    """The Langfuse dataset item holding it (for the workbench)."""

    @field_validator("id")
    @classmethod
    def _id_fits(cls, value: str) -> str:
        return names.check_part("document", value)


class ExperimentRequest(BaseModel):
    """An experiment: every document under every variant, `repeats` times."""

    documents: list[ExperimentDocument]
    variants: dict[str, Variant]
    repeats: int = 1
    review: Literal["approve", "reject", "leave"] = "approve"
    concurrency: int = 16
    fingerprint: str = ""
    """The workbench's digest of what defines the experiment: a second run of the same name with
    other documents, variants or settings is refused there."""
    dataset: str | None = None
    """The Langfuse dataset holding the documents (for the workbench)."""

    def definition(self) -> ExperimentDefinition:
        return ExperimentDefinition(
            documents=[
                DocumentRef(
                    id=d.id,
                    expected=d.expected,
                    chars=len(d.text),
                    dataset_item_id=d.dataset_item_id,
                )
                for d in self.documents
            ],
            **self.model_dump(exclude={"documents"}),
        )

    def problems(self) -> list[str]:
        found = []
        if not self.documents:
            found.append("it has no documents")
        if not self.variants:
            found.append("it has no variants")
        ids = [d.id for d in self.documents]
        repeated = sorted({i for i in ids if ids.count(i) > 1})
        if repeated:
            found.append(f"document ids repeat: {', '.join(repeated[:5])}")
        for name in self.variants:
            try:
                names.check_part("variant", name)
            except ValueError as e:
                found.append(str(e))
        if self.repeats < 1 or self.concurrency < 1:
            found.append("repeats and concurrency must be at least 1")
        return found


class DocumentRef(BaseModel):
    id: str
    expected: dict[str, Any] | None = None
    chars: int = 0
    dataset_item_id: str | None = None


class ExperimentDefinition(BaseModel):
    """What the experiment's state keeps of its request (the documents without their text)."""

    documents: list[DocumentRef]
    variants: dict[str, Variant]
    repeats: int
    review: str
    concurrency: int
    fingerprint: str = ""
    dataset: str | None = None


class ExperimentItem(BaseModel):
    """One claim of the experiment, as its state keeps it once the claim ended."""

    claim_id: str
    document: str
    variant: str
    repeat: int
    outcome: ClaimOutcome | None = None
    error: str | None = None
    """Why there is no outcome (the claim was killed or cancelled)."""


class ExperimentSummary(BaseModel):
    name: str
    items: int
    statuses: dict[str, int]
    versions: dict[str, dict[str, int]]


def plan(name: str, request: ExperimentRequest | ExperimentDefinition) -> list[ExperimentItem]:
    """The experiment's claims in the order they start: repeat by repeat, document by document,
    every variant of a document one after the other (so partial results are already paired)."""
    return [
        ExperimentItem(
            claim_id=names.experiment_claim_id(name, variant, doc.id, repeat),
            document=doc.id,
            variant=variant,
            repeat=repeat,
        )
        for repeat in range(1, request.repeats + 1)
        for doc in request.documents
        for variant in request.variants
    ]


class RejudgeBatch(BaseModel):
    """Claims of an experiment to score again under one judge version."""

    experiment: str
    judge_version: int
    claim_ids: list[str]
    concurrency: int = 16


class RejudgeSummary(BaseModel):
    experiment: str
    judge_version: int
    judged: int
    failed: dict[str, str]


def item_from_state(value: str) -> ExperimentItem:
    """An item as Restate's SQL `state` table shows it (`value_utf8`)."""
    return ExperimentItem.model_validate(json.loads(value))
