"""Billing's write operations. Each takes keyword-only arguments and `now=` where time matters."""
