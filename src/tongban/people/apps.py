"""App configs of people and accounts, and of the admin site that sits behind their login."""

from django.apps import AppConfig
from django.contrib.admin import apps as admin_apps


class PeopleConfig(AppConfig):
    name = "tongban.people"
    label = "people"
    # Two configs live in this module; this one is what "tongban.people" means.
    default = True


class TongbanAdminConfig(admin_apps.AdminConfig):
    """Use in INSTALLED_APPS instead of "django.contrib.admin": the default admin site then
    requires our login and a TOTP-verified session."""

    default = False
    default_site = "tongban.people.admin_site.TongbanAdminSite"
