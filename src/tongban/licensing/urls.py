from django.urls import path

from . import views, workbench

app_name = "licensing"
urlpatterns = [
    path("wallet/", views.wallet, name="wallet"),
    path("wallet/<int:pk>/", views.license_detail, name="license"),
    path("verify/", views.verify, name="verify"),
    path("workbench/licenses/", workbench.licenses, name="workbench_licenses"),
    path("workbench/licenses/new/<str:type_code>/", workbench.issue, name="workbench_issue"),
    path("workbench/licenses/<int:pk>/", workbench.license_detail, name="workbench_license"),
    path(
        "workbench/licenses/<int:pk>/status/", workbench.license_status,
        name="workbench_license_status",
    ),
    path(
        "workbench/licenses/<int:pk>/reissue/", workbench.license_reissue,
        name="workbench_license_reissue",
    ),
]
