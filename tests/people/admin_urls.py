"""The project's URLs with the admin served by `TongbanAdminSite`, as it is once
`tongban.people.apps.TongbanAdminConfig` replaces "django.contrib.admin" in settings."""

from django.contrib import admin
from django.urls import path

from tongban.config import urls as project_urls
from tongban.people.admin_site import TongbanAdminSite

site = TongbanAdminSite(name="admin")
for model, model_admin in admin.site._registry.items():
    site.register(model, type(model_admin))

urlpatterns = [
    path("admin/", site.urls),
    *(p for p in project_urls.urlpatterns if str(p.pattern) != "admin/"),
]
