from django.apps import AppConfig


class NoticesConfig(AppConfig):
    name = "notices"
    verbose_name = "알림 (Notices)"
    default_auto_field = "django.db.models.BigAutoField"
