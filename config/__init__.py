"""Wiring only: settings, URLs, the Celery app and its beat schedule."""

from .celery import app as celery_app

__all__ = ["celery_app"]
