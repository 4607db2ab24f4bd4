"""Notices to subscribers: typed notices, rendered per channel, sent through 알림톡 → SMS/LMS → email, with an
append-only delivery log that is the merchant's proof (docs/architecture.md#layers-and-import-direction)."""
