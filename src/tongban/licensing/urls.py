from django.urls import path

from . import views, workbench

app_name = "licensing"
urlpatterns = [
    path("wallet/", views.wallet, name="wallet"),
    path("wallet/<int:pk>/", views.license_detail, name="license"),
    path("wallet/<int:pk>/pdf/", views.license_pdf, name="license_pdf"),
    path("wallet/<int:pk>/copies/new/", views.copy_new, name="copy_new"),
    path("wallet/copies/<int:pk>/pdf/", views.copy_pdf, name="copy_pdf"),
    path("wallet/copies/<int:pk>/", views.copy_detail, name="copy"),
    path("wallet/copies/<int:pk>/withdraw/", views.copy_withdraw, name="copy_withdraw"),
    path("wallet/<int:pk>/consents/new/", views.consent_new, name="consent_new"),
    path("wallet/consents/<int:pk>/withdraw/", views.consent_withdraw, name="consent_withdraw"),
    path("wallet/authorized/", views.authorized, name="authorized"),
    path("wallet/authorized/<int:pk>/", views.authorized_detail, name="authorized_license"),
    path("v/<str:token>/", views.online, name="online"),
    path("biz/<str:token>/", views.one_code, name="one_code"),
    path("verify/", views.verify, name="verify"),
    path("workbench/licenses/", workbench.licenses, name="workbench_licenses"),
    path("workbench/licenses/new/<str:type_code>/", workbench.issue, name="workbench_issue"),
    path("workbench/licenses/<int:pk>/", workbench.license_detail, name="workbench_license"),
    path(
        "workbench/licenses/<int:pk>/status/",
        workbench.license_status,
        name="workbench_license_status",
    ),
    path(
        "workbench/licenses/<int:pk>/reissue/",
        workbench.license_reissue,
        name="workbench_license_reissue",
    ),
]
