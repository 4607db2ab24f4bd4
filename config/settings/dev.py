"""`make run`: debug on, sandbox gateway, console email, the test clock enabled."""

from .base import *  # noqa: F403
from .base import env, env_bool

DEBUG = env_bool("DJANGO_DEBUG", True)
BILLING_TEST_CLOCK = True
# The sandbox's billing channel (REST billing-key issuance requires a channel_key since the 2026 schema).
IAMPORT_CHANNEL_KEY = env("IAMPORT_CHANNEL_KEY", "channel-key-sandbox-billing")
