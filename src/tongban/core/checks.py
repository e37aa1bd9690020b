"""Production mode refuses to start with development defaults."""

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured


def production_problems() -> list[str]:
    if not settings.PRODUCTION:
        return []
    problems = []
    if settings.SECRET_KEY == settings.DEVELOPMENT_SECRET_KEY or len(settings.SECRET_KEY) < 32:
        problems.append("SECRET_KEY is the development default or shorter than 32 characters")
    if settings.DEBUG:
        problems.append("DEBUG is on")
    if settings.DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
        problems.append("DATABASE_URL points to SQLite; production needs PostgreSQL")
    return problems


def assert_production_safe() -> None:
    """Called when the app registry is ready, so every process (server, worker, command)
    refuses to start rather than run insecurely."""
    problems = production_problems()
    if problems:
        raise ImproperlyConfigured("Refusing to start in production: " + "; ".join(problems))
