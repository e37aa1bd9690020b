"""Account pages, mounted under /account/."""

from django.urls import path

from . import views

app_name = "people"
urlpatterns = [
    path("login/", views.login_view, name="login"),
    path("login/totp-setup/", views.totp_setup_view, name="totp_setup"),
    path("logout/", views.logout_view, name="logout"),
]
