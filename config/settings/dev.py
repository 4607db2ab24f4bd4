"""`make run`: debug on, sandbox gateway, console email, the test clock enabled."""

from .base import *  # noqa: F403
from .base import env_bool

DEBUG = env_bool("DJANGO_DEBUG", True)
BILLING_TEST_CLOCK = True
