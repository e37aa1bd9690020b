from django.apps import AppConfig


class EntitlementsConfig(AppConfig):
    name = "tongban.entitlements"
    label = "entitlements"
    verbose_name = "Entitlements without applying"
