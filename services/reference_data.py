"""Read-only reference data from the data folder: FX rates, policies, the fraud database."""

from __future__ import annotations

import json
from datetime import date
from functools import lru_cache
from pathlib import Path
from typing import Any

from .config import settings
from .models import FraudCheck, PolicyInfo, Valuation


class UnknownCurrencyError(ValueError):
    """The claim's currency is not in the FX table."""


@lru_cache(maxsize=8)
def _load(data_dir: Path, name: str) -> dict[str, Any]:
    path = data_dir / name
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise FileNotFoundError(
            f"Reference data {path} is missing. "
            "Set WORKBENCH_DATA_DIR to the project's data/ folder."
        ) from None


def _data(name: str) -> dict[str, Any]:
    return _load(settings().data_dir, name)


def fx_rates() -> dict[str, float]:
    """EUR per one unit of each known currency."""
    return {code.upper(): float(rate) for code, rate in _data("fx.json")["rates"].items()}


def to_eur(amount: float, currency: str) -> float:
    rates = fx_rates()
    code = (currency or "").strip().upper()
    if code not in rates:
        known = ", ".join(sorted(rates))
        raise UnknownCurrencyError(
            f"Currency {currency!r} is not in the FX table (data/fx.json). Known: {known}."
        )
    return round(amount * rates[code], 2)


def value_claim(amount: float, currency: str, customer_id: str | None) -> Valuation:
    """The claim's amount in EUR, with what the workflow checks it against: the exact rate, the
    day this runs ("today", journaled with the result so a replay sees the same day) and the
    start of the customer's policy."""
    rate = fx_rates().get((currency or "").strip().upper())
    amount_eur = to_eur(amount, currency)  # raises UnknownCurrencyError for a code not in the table
    customer = _data("policies.json").get("customers", {}).get(customer_id or "")
    return Valuation(
        amount_eur=amount_eur,
        rate=float(rate or 0.0),
        today=date.today().isoformat(),
        policy_start=(customer or {}).get("since"),
    )


def check_fraud(customer_id: str) -> FraudCheck:
    flagged = _data("fraud.json").get("flagged", {})
    reason = flagged.get(customer_id)
    return FraudCheck(customer_id=customer_id, flagged=reason is not None, reason=reason)


def lookup_policy(customer_id: str, category: str) -> PolicyInfo:
    data = _data("policies.json")
    customer = data.get("customers", {}).get(customer_id)
    if customer is None:
        return PolicyInfo(
            customer_id=customer_id,
            found=False,
            plan=None,
            covered=False,
            per_claim_limit_eur=None,
            review_threshold_eur=None,
        )
    plan_name = customer["plan"]
    plan = data["plans"][plan_name]
    return PolicyInfo(
        customer_id=customer_id,
        found=True,
        plan=plan_name,
        covered=category in plan["covered"],
        per_claim_limit_eur=float(plan["per_claim_limit_eur"]),
        review_threshold_eur=float(plan["review_threshold_eur"]),
    )
