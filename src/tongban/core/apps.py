from django.apps import AppConfig


class CoreConfig(AppConfig):
    name = "tongban.core"
    label = "core"
    verbose_name = "Core"

    def ready(self) -> None:
        from .checks import assert_production_safe

        assert_production_safe()
