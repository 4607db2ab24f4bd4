"""Settings for the benchmarks (`DJANGO_SETTINGS_MODULE=bench.settings`): production behaviour on the bench database.

`bench.common.configure()` sets the environment these read (DATABASE_URL or EMBEDDED_DB_NAME, CELERY_BROKER_URL,
CELERY_TASK_DEFAULT_QUEUE, IAMPORT_API_URL, SITE_URL) before Django starts, in the bench process and in every
worker or gunicorn it spawns, so they all agree.
"""

from config.settings.base import *  # noqa: F403
from config.settings.base import env, env_int

DEBUG = False
# The production clock: no ClockOffset lookup per task, subscriptions are due by real time.
BILLING_TEST_CLOCK = False
# The sandbox's billing channel (as in dev and test settings).
IAMPORT_CHANNEL_KEY = env("IAMPORT_CHANNEL_KEY", "channel-key-sandbox-billing")
# `billing_run.py --rate-limit R`: the global charges-per-second cap, passed to the workers' environment. Kept
# here too so the bench works on a tree whose base settings predate it; billing/ratelimit.py (d35ba32) reads it,
# and billing_run reports whether any app module does and whether the cap held at the sandbox.
BILLING_CHARGE_RATE_LIMIT = env_int("BILLING_CHARGE_RATE_LIMIT", 0)
