"""The gateway threads and their dispatcher: a charge with a rate-limit slot starts at its slot, never before,
and charges start in slot order whatever order their batches handed them over in."""

from __future__ import annotations

import time

import pytest

from billing.dispatch import gateway_submit


def test_charges_start_in_slot_order_and_never_before_their_slot_when_handed_over_out_of_order():
    base = time.monotonic() + 0.3
    moments = [base + 0.4, base, base + 0.2]  # a later batch handed its charges over first

    futures = [gateway_submit(time.monotonic, at=moment) for moment in moments]
    started = [future.result(timeout=10) for future in futures]

    assert all(start >= moment for start, moment in zip(started, moments, strict=True))
    assert sorted(range(3), key=lambda i: started[i]) == [1, 2, 0]


def test_a_call_without_a_slot_or_with_a_past_one_starts_at_once_and_its_error_reaches_the_caller():
    def fails():
        raise RuntimeError("gateway adapter bug")

    assert gateway_submit(lambda: "done").result(timeout=10) == "done"
    with pytest.raises(RuntimeError, match="adapter bug"):
        gateway_submit(fails, at=time.monotonic() - 1).result(timeout=10)
    with pytest.raises(RuntimeError, match="adapter bug"):
        gateway_submit(fails, at=time.monotonic() + 0.05).result(timeout=10)
