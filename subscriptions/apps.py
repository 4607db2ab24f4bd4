from django.apps import AppConfig


class SubscriptionsConfig(AppConfig):
    name = "subscriptions"
    verbose_name = "Subscriptions"

    def ready(self) -> None:
        from django.core.checks import Tags, register

        from subscriptions import receivers  # noqa: F401 - connects the billing signal receivers
        from subscriptions.merchant import check_merchant_profile

        register(check_merchant_profile, Tags.compatibility, deploy=True)
