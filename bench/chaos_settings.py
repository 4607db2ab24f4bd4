"""Settings for bench/chaos.py: bench.settings with the test clock on.

The chaos run moves time month by month; `billing.clock` keeps the offset in the database so every worker sees
it, but only when BILLING_TEST_CLOCK is on (bench.settings turns it off for the throughput benchmarks).
"""

from bench.settings import *  # noqa: F403

BILLING_TEST_CLOCK = True
