"""Subscriptions write operations (keyword-only, `now=` where time matters)."""
