"""The REST API of the subscriptions layer: plans, subscriptions and plan changes, and removing a card
(which must know whether a live subscription still depends on it)."""
