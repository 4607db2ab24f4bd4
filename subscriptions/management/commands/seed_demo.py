"""Seeds a development database: demo plans and a dev admin user. Refuses to run in production."""

import os

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

DEV_ADMIN_USERNAME = "admin"
DEV_ADMIN_PASSWORD = "admin-dev-only"  # noqa: S105 - printed on purpose: a dev-only account


class Command(BaseCommand):
    help = (
        "Create demo plans, demo policies (terms, privacy, refund) and a dev admin user (development only; idempotent)."
    )

    def handle(self, *args, **options):
        if not getattr(settings, "BILLING_TEST_CLOCK", False) and not os.environ.get("ALLOW_SEED"):
            raise CommandError("seed_demo is for development databases only")
        user_model = get_user_model()
        admin, created = user_model.objects.get_or_create(
            username=DEV_ADMIN_USERNAME,
            defaults={"is_staff": True, "is_superuser": True, "email": "admin@example.com"},
        )
        if created:
            admin.set_password(DEV_ADMIN_PASSWORD)
            admin.save()
        plans = self._seed_plans()
        from billing import clock
        from subscriptions.services.policies import policies_seed_demo

        policies_seed_demo(now=clock.now())
        self.stdout.write(
            f"Dev admin (development only): username '{DEV_ADMIN_USERNAME}', password '{DEV_ADMIN_PASSWORD}'"
            f"{' (created)' if created else ''}; demo plans: {plans}"
        )

    def _seed_plans(self) -> int:
        try:
            from subscriptions.services.plans import plans_seed_demo
        except ImportError:
            return 0
        return plans_seed_demo()
