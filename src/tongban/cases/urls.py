"""Pages of online applications, mounted under /cases/."""

from django.urls import path

from . import views

app_name = "cases"
urlpatterns = [
    path("", views.my_cases, name="my"),
    path("apply/bundle/<slug:code>/", views.apply_bundle, name="apply_bundle"),
    path("apply/<str:code>/", views.apply_item, name="apply"),
    path("submissions/<int:pk>/", views.submission_detail, name="submission"),
    path("<int:pk>/", views.case_detail, name="case"),
    path("<int:pk>/withdraw/", views.case_withdraw, name="withdraw"),
    path("<int:pk>/supplement/", views.case_supplement, name="supplement"),
    path("<int:pk>/evaluate/", views.case_evaluate, name="evaluate"),
    path("<int:pk>/files/<int:upload_pk>/", views.case_upload, name="upload"),
    path("queue/", views.queue, name="queue"),
    path("queue/<int:pk>/", views.staff_case, name="staff_case"),
    path("queue/<int:pk>/files/<int:upload_pk>/", views.staff_upload, name="staff_upload"),
    path("queue/<int:pk>/<slug:action>/", views.staff_act, name="staff_act"),
]
