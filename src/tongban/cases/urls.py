"""Pages of online applications, mounted under /cases/."""

from django.urls import path

from . import views

app_name = "cases"
urlpatterns = [
    path("", views.my_cases, name="my"),
    path("messages/", views.my_messages, name="messages"),
    path("apply/bundle/<slug:code>/", views.apply_bundle, name="apply_bundle"),
    path("apply/<str:code>/", views.apply_item, name="apply"),
    path("submissions/<int:pk>/", views.submission_detail, name="submission"),
    path("<int:pk>/", views.case_detail, name="case"),
    path("<int:pk>/withdraw/", views.case_withdraw, name="withdraw"),
    path("<int:pk>/supplement/", views.case_supplement, name="supplement"),
    path("<int:pk>/evaluate/", views.case_evaluate, name="evaluate"),
    path("<int:pk>/files/<int:upload_pk>/", views.case_upload, name="upload"),
    path("mandates/", views.mandates_given, name="mandates"),
    path("mandates/<int:pk>/withdraw/", views.mandate_withdraw, name="mandate_withdraw"),
    path("mandates/held/", views.mandates_held, name="mandates_held"),
    path("mandates/held/<int:pk>/apply/", views.mandate_held_apply, name="mandate_held_apply"),
    path("window/", views.window, name="window"),
    path(
        "window/mandates/<int:pk>/withdraw/",
        views.window_mandate_withdraw,
        name="window_mandate_withdraw",
    ),
    path("window/apply/bundle/<slug:code>/", views.window_apply_bundle, name="window_apply_bundle"),
    path("window/apply/<str:code>/", views.window_apply_item, name="window_apply"),
    path("queue/", views.queue, name="queue"),
    path("queue/<int:pk>/", views.staff_case, name="staff_case"),
    path("queue/<int:pk>/files/<int:upload_pk>/", views.staff_upload, name="staff_upload"),
    path("queue/<int:pk>/<slug:action>/", views.staff_act, name="staff_act"),
]
