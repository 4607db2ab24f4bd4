"""pytest: the same PostgreSQL rule as dev (DATABASE_URL or embedded), fast hashing, in-memory email."""

from .base import *  # noqa: F403
from .base import env

DEBUG = False
BILLING_TEST_CLOCK = True
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
IAMPORT_READ_TIMEOUT = 5.0
# The sandbox's billing channel (REST billing-key issuance requires a channel_key since the 2026 schema).
IAMPORT_CHANNEL_KEY = env("IAMPORT_CHANNEL_KEY", "channel-key-sandbox-billing")
