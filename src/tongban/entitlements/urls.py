"""Pages of entitlements without applying, mounted under /entitlements/."""

from django.urls import path

from . import views

app_name = "entitlements"
urlpatterns = [
    path("", views.my_entitlements, name="my"),
    path("<int:pk>/decline/", views.decline, name="decline"),
    path(
        "verifications/<int:pk>/confirm/",
        views.verification_confirm,
        name="verification_confirm",
    ),
    path("rules/", views.rules, name="rules"),
    path("review/", views.review, name="review"),
    path("review/<int:pk>/<slug:decision>/", views.review_decide, name="review_decide"),
    path("rules/<slug:code>/preview/", views.preview, name="preview"),
    path("rules/<slug:code>/run/", views.run_now, name="run_now"),
]
