from __future__ import annotations

import threading

import pytest

from services.ledger import Ledger


@pytest.fixture
def ledger(tmp_path) -> Ledger:
    return Ledger(tmp_path / "ledger.sqlite3")


def test_first_payment_is_made(ledger: Ledger) -> None:
    payment = ledger.pay("claim/a/reimburse", "a", "C-1", 12.5)
    assert not payment.duplicate
    assert payment.amount_eur == 12.5
    assert [p.payment_id for p in ledger.payments()] == [payment.payment_id]


def test_same_key_is_refused_and_answers_with_the_first_payment(ledger: Ledger) -> None:
    first = ledger.pay("claim/a/reimburse", "a", "C-1", 12.5)
    again = ledger.pay("claim/a/reimburse", "a", "C-1", 12.5)
    assert again.duplicate
    assert again.payment_id == first.payment_id
    assert len(ledger.payments()) == 1
    assert [a["accepted"] for a in ledger.attempts("claim/a/reimburse")] == [1, 0]


def test_concurrent_payments_with_one_key_pay_once(tmp_path) -> None:
    path = tmp_path / "ledger.sqlite3"
    Ledger(path)
    results = []

    def pay() -> None:
        results.append(Ledger(path).pay("claim/x/reimburse", "x", "C-9", 100.0))

    threads = [threading.Thread(target=pay) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(Ledger(path).payments()) == 1
    assert sum(not r.duplicate for r in results) == 1
    assert len({r.payment_id for r in results}) == 1


@pytest.mark.parametrize(
    ("key", "amount", "message"),
    [("", 10.0, "needs an idempotency key"), ("k", 0.0, "must be positive"), ("k", -5.0, "-5.0")],
    ids=["empty-key", "zero", "negative"],
)
def test_bad_payments_are_refused_with_the_reason(ledger: Ledger, key, amount, message) -> None:
    with pytest.raises(ValueError, match=message):
        ledger.pay(key, "a", "C-1", amount)
    assert ledger.payments() == []
