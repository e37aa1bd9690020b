"""Pages where a person asks for a proof (电子证明) generated from shared data."""

from django.urls import path  # noqa: F401 - filled in by the proofs commit

app_name = "proofs"
urlpatterns: list = []
