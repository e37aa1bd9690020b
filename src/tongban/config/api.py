"""The API root: django-ninja under /api/v1/, with one exception handler for all errors."""

from django.http import Http404, HttpRequest, HttpResponse
from django.utils.translation import gettext as _
from ninja import NinjaAPI
from ninja.errors import AuthenticationError as NinjaAuthenticationError
from ninja.errors import HttpError
from ninja.errors import ValidationError as NinjaValidationError

from tongban.cases.api import router as cases_router
from tongban.catalog.api import router as catalog_router
from tongban.core.errors import TongbanError
from tongban.entitlements.api import router as entitlements_router
from tongban.exchange.api import router as exchange_router
from tongban.exchange.proof_api import router as proofs_router
from tongban.licensing.api import router as licensing_router

api = NinjaAPI(
    title="Tongban API",
    version="1",
    description="Tongban (通办) government services platform API.",
    urls_namespace="api",
)


@api.exception_handler(TongbanError)
def tongban_error(request: HttpRequest, exc: TongbanError) -> HttpResponse:
    response = api.create_response(request, exc.as_dict(), status=exc.status)
    for name, value in exc.response_headers().items():
        response[name] = value
    return response


@api.exception_handler(NinjaValidationError)
def validation_error(request: HttpRequest, exc: NinjaValidationError) -> HttpResponse:
    errors = [
        {"loc": [str(part) for part in e.get("loc", [])], "message": str(e.get("msg", ""))}
        for e in exc.errors
    ]
    body = {"code": "invalid_input", "message": _("The input is not valid."), "errors": errors}
    return api.create_response(request, body, status=422)


@api.exception_handler(Http404)
def not_found(request: HttpRequest, exc: Http404) -> HttpResponse:
    return api.create_response(
        request, {"code": "not_found", "message": _("Not found.")}, status=404
    )


@api.exception_handler(NinjaAuthenticationError)
def not_authenticated(request: HttpRequest, exc: Exception) -> HttpResponse:
    body = {"code": "not_authenticated", "message": _("Please log in.")}
    return api.create_response(request, body, status=401)


@api.exception_handler(HttpError)
def http_error(request: HttpRequest, exc: HttpError) -> HttpResponse:
    body = {"code": "http_error", "message": str(exc)}
    return api.create_response(request, body, status=exc.status_code)


api.add_router("/catalog/", catalog_router)
api.add_router("/licenses/", licensing_router)
api.add_router("/exchange/", exchange_router)
api.add_router("/proofs/", proofs_router)
api.add_router("/cases/", cases_router)
api.add_router("/entitlements/", entitlements_router)
