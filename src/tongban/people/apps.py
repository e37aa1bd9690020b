from django.apps import AppConfig


class PeopleConfig(AppConfig):
    name = "tongban.people"
    label = "people"
