from django.apps import AppConfig


class EntitlementsConfig(AppConfig):
    name = "tongban.entitlements"
    label = "entitlements"
    verbose_name = "Entitlements without applying"

    def ready(self) -> None:
        from tongban.cases.services import application_checks

        from .selectors import benefit_held_check

        application_checks.append(benefit_held_check)
