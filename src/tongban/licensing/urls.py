from django.urls import path

from . import views

app_name = "licensing"
urlpatterns = [
    path("wallet/", views.wallet, name="wallet"),
    path("wallet/<int:pk>/", views.license_detail, name="license"),
    path("verify/", views.verify, name="verify"),
]
