from django.contrib import admin
from django.urls import include, path

from .api import api

urlpatterns = [
    path("api/v1/", api.urls),
    path("admin/", admin.site.urls),
    path("i18n/", include("django.conf.urls.i18n")),
    path("account/", include("tongban.people.urls")),
    path("", include("tongban.licensing.urls")),
    path("exchange/", include("tongban.exchange.urls")),
    path("proofs/", include("tongban.exchange.proof_urls")),
    path("cases/", include("tongban.cases.urls")),
    path("entitlements/", include("tongban.entitlements.urls")),
    path("", include("tongban.portal.urls")),
]
