"""Prints where everything lives before `make run` starts the processes."""

from django.conf import settings
from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = "Print the URLs of a `make run` session."

    def handle(self, *args, **options):
        db = settings.DATABASES["default"]
        lines = [
            "",
            "kbilling is starting (Ctrl-C stops every process):",
            "  web        http://127.0.0.1:8000/",
            "  admin      http://127.0.0.1:8000/admin/",
            "  API docs   http://127.0.0.1:8000/api/docs/",
            "  health     http://127.0.0.1:8000/healthz",
            "  sandbox    http://127.0.0.1:8089/  (Iamport V1 look-alike; controls under /__sandbox__/)",
            f"  database   PostgreSQL {'embedded under var/pgdata' if settings.EMBEDDED_POSTGRES else db.get('HOST')}",
            f"  broker     {settings.CELERY_BROKER_URL.split('://')[0]}",
            "",
        ]
        self.stdout.write("\n".join(lines))
