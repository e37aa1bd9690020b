from django.apps import AppConfig


class LicensingConfig(AppConfig):
    name = "tongban.licensing"
    label = "licensing"
    verbose_name = "Electronic licenses and seals"
