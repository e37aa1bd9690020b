"""Pages where a person asks for a proof (电子证明) generated from shared data."""

from django.urls import path

from . import proof_views

app_name = "proofs"
urlpatterns = [
    path("", proof_views.proof_list, name="list"),
]
