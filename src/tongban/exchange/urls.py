"""Pages of the data-sharing exchange, mounted under /exchange/."""

from django.urls import path

from . import views

app_name = "exchange"
urlpatterns = [
    path("", views.catalog, name="catalog"),
    path("datasets/<slug:code>/", views.dataset_detail, name="dataset"),
    path("datasets/<slug:code>/request/", views.grant_request, name="grant_request"),
    path("grants/", views.grants, name="grants"),
    path("grants/<int:pk>/", views.grant_detail, name="grant"),
    path("grants/<int:pk>/approve/", views.grant_approve, name="grant_approve"),
    path("grants/<int:pk>/reject/", views.grant_reject, name="grant_reject"),
    path("grants/<int:pk>/revoke/", views.grant_revoke, name="grant_revoke"),
    path("query/", views.query, name="query"),
    path("my/", views.my_accesses, name="my"),
    path("my/consents/", views.my_consents, name="my_consents"),
    path("my/consents/<int:pk>/withdraw/", views.my_consent_withdraw, name="my_consent_withdraw"),
    path("stats/", views.stats, name="stats"),
    path("credentials/", views.credentials, name="credentials"),
    path("credentials/<int:pk>/rotate/", views.credential_rotate, name="credential_rotate"),
    path("credentials/<int:pk>/revoke/", views.credential_revoke, name="credential_revoke"),
]
