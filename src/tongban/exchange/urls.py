"""Pages of the data-sharing exchange."""

from django.urls import path  # noqa: F401 - filled in by the pages commit

app_name = "exchange"
urlpatterns: list = []
