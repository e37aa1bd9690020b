from django.urls import path

from . import views

app_name = "portal"
urlpatterns = [
    path("", views.home, name="home"),
    path("search/", views.search, name="search"),
    path("events/<slug:code>/", views.life_event, name="life_event"),
    path("departments/", views.departments, name="departments"),
    path("departments/<slug:code>/", views.department, name="department"),
    path("items/<str:code>/", views.item_guide, name="item"),
    path("bundles/<slug:code>/", views.bundle_guide, name="bundle"),
    path("elder/", views.elder_mode, name="elder_mode"),
]
