"""WSGI application for the server benchmarks: Tongban's own settings and URLs, plus one
trivial view at ``GET /bench/hello`` that answers "hello".

Both the hello view and the real API are served by the same gunicorn process, through the
same middleware, so the ratio between them shows what the catalog itself costs. Serve it
with ``gunicorn --pythonpath benchmarks hello_wsgi:application``; the database and other
settings come from the environment (``DATABASE_URL``, ``DEBUG`` ...) as usual.
"""

import os

from django.conf import settings
from django.core.wsgi import get_wsgi_application
from django.http import HttpRequest, HttpResponse
from django.urls import URLPattern, URLResolver, path

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tongban.config.settings")


def hello(request: HttpRequest) -> HttpResponse:
    """The baseline: no database, no template, no serialization."""
    return HttpResponse(b"hello", content_type="text/plain; charset=utf-8")


# This module is the URLconf: the hello view in front of the real URL patterns.
settings.ROOT_URLCONF = __name__
application = get_wsgi_application()

from tongban.config.urls import urlpatterns as _tongban_urlpatterns  # noqa: E402

urlpatterns: list[URLPattern | URLResolver] = [
    path("bench/hello", hello, name="bench-hello"),
    *_tongban_urlpatterns,
]
