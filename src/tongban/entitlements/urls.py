"""Pages of entitlements without applying, mounted under /entitlements/."""

from django.urls import path

from . import views

app_name = "entitlements"
urlpatterns = [
    path("", views.my_entitlements, name="my"),
    path("<int:pk>/decline/", views.decline, name="decline"),
    path("rules/", views.rules, name="rules"),
    path("rules/<slug:code>/preview/", views.preview, name="preview"),
]
