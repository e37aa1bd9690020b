from django.apps import AppConfig


class EntitlementsConfig(AppConfig):
    name = "tongban.entitlements"
    label = "entitlements"
    verbose_name = "Entitlements without applying"

    def ready(self) -> None:
        from tongban.cases.services import application_checks, before_cases_listed

        from .selectors import benefit_held_check
        from .services import grant_cases_open_of

        application_checks.append(benefit_held_check)
        before_cases_listed.append(grant_cases_open_of)
