"""The exchange API: queries, verifications, the catalog, grants, access log, consents.

Department systems call with a machine credential (`Authorization: Bearer tbx_...`), staff
and data administrators with a TOTP-verified session, people with their own session. Each
handler checks nothing itself beyond who is asking: the services decide and audit."""

from typing import Any, cast

from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _
from ninja import Header, Query, Router
from ninja.pagination import PageNumberPagination, paginate
from ninja.responses import Status

from tongban.core.errors import NotFoundError
from tongban.licensing import services as licensing_services
from tongban.people import selectors as people_selectors
from tongban.people.models import User

from . import auth, selectors, services, verifications
from .models import MachineCredential
from .schemas import (
    AccessOut,
    DataConsentIn,
    DataConsentOut,
    DatasetFilters,
    DatasetOut,
    ErrorOut,
    GrantApproveIn,
    GrantFilters,
    GrantNoteIn,
    GrantOut,
    GrantRequestIn,
    QueryIn,
    QueryOut,
    QuestionOut,
    VerifyIn,
    VerifyOut,
)

router = Router(tags=["exchange"])

# Refusals each kind of endpoint documents (the bodies all have the ErrorOut shape).
REFUSALS: dict[int, Any] = {401: ErrorOut, 403: ErrorOut, 422: ErrorOut}
LOOKUP_REFUSALS: dict[int, Any] = REFUSALS | {404: ErrorOut}
CHANGE_REFUSALS: dict[int, Any] = LOOKUP_REFUSALS | {409: ErrorOut}
READ_REFUSALS: dict[int, Any] = LOOKUP_REFUSALS | {409: ErrorOut, 429: ErrorOut, 502: ErrorOut}

IDEMPOTENCY_KEY = Header(
    None,
    alias="Idempotency-Key",
    max_length=64,
    description="Repeat it on a retry to get the first answer again, read and logged once",
)


def _user(request: HttpRequest) -> User:
    """The person a session auth let in."""
    return cast(User, request.auth)  # type: ignore[attr-defined]


def _caller(request: HttpRequest) -> services.Caller:
    """The consumer a machine credential or a verified staff session stands for."""
    who = request.auth  # type: ignore[attr-defined]
    if isinstance(who, MachineCredential):
        return services.Caller.machine(who)
    return services.Caller.staff(who)


# --- queries and verifications (查询, 核验) -----------------------------------------


@router.post("/query", response={200: QueryOut} | READ_REFUSALS, auth=auth.CONSUMERS)
def query(
    request: HttpRequest, body: QueryIn, idempotency_key: str | None = IDEMPOTENCY_KEY
) -> Any:
    """查询: the granted fields of one subject's rows in a dataset, for a stated purpose and
    legal basis. Conditional datasets also need the subject's consent. Every answer is in
    the audit log and in the subject's own access log; ID numbers are masked unless the
    grant includes them."""
    return services.data_query(
        caller=_caller(request),
        dataset_code=body.dataset,
        subject=body.subject,
        fields=body.fields,
        purpose=body.purpose.value,
        legal_basis=body.legal_basis,
        idempotency_key=idempotency_key,
    )


@router.post("/verify", response={200: VerifyOut} | READ_REFUSALS, auth=auth.CONSUMERS)
def verify(
    request: HttpRequest, body: VerifyIn, idempotency_key: str | None = IDEMPOTENCY_KEY
) -> Any:
    """核验: a named yes/no question about one subject (see GET /questions). Only the answer
    leaves; a grant in verify mode suffices."""
    return services.fact_verify(
        caller=_caller(request),
        question=body.question,
        subject=body.subject,
        params=body.params,
        purpose=body.purpose.value,
        legal_basis=body.legal_basis,
        idempotency_key=idempotency_key,
    )


@router.get("/questions", response={200: list[QuestionOut]} | REFUSALS, auth=auth.CATALOG_READERS)
def questions(request: HttpRequest) -> Any:
    """The verification questions a consumer may ask, with the dataset each one reads."""
    return [
        {
            "name": question.name,
            "label": str(question.label),
            "dataset": question.dataset,
            "params": list(question.params),
        }
        for question in verifications.QUESTIONS.values()
    ]


# --- the data catalog (数据目录) ------------------------------------------------------


@router.get("/datasets", response={200: list[DatasetOut]} | REFUSALS, auth=auth.CATALOG_READERS)
@paginate(PageNumberPagination, page_size=20, max_page_size=100)
def datasets(request: HttpRequest, filters: Query[DatasetFilters]) -> Any:
    """The data catalog: each dataset's provider, fields, sharing class and legal basis."""
    return selectors.datasets_list(query=filters.q, provider=filters.provider)


@router.get(
    "/datasets/{code}", response={200: DatasetOut} | LOOKUP_REFUSALS, auth=auth.CATALOG_READERS
)
def dataset(request: HttpRequest, code: str) -> Any:
    return services.dataset_get(code)


# --- sharing grants (共享授权) --------------------------------------------------------


@router.get("/grants", response={200: list[GrantOut]} | REFUSALS, auth=auth.verified_staff_or_admin)
@paginate(PageNumberPagination, page_size=25, max_page_size=100)
def grants(request: HttpRequest, filters: Query[GrantFilters]) -> Any:
    """Staff see their department's grants and requests; data administrators see all."""
    status = filters.status.value if filters.status else ""
    return selectors.grants_for_user(user=_user(request), status=status)


@router.post("/grants", response={200: GrantOut} | CHANGE_REFUSALS, auth=auth.verified_staff)
def grant_request(request: HttpRequest, body: GrantRequestIn) -> Any:
    """申请共享: ask, for your department, to read fields of a dataset (or only verify)."""
    return services.grant_request(
        dataset=services.dataset_get(body.dataset),
        fields=body.fields,
        mode=body.mode.value,
        purpose=body.purpose.value,
        legal_basis=body.legal_basis,
        valid_until=body.valid_until,
        full_id=body.full_id,
        actor=_user(request),
    )


@router.post(
    "/grants/{grant_id}/approve",
    response={200: GrantOut} | CHANGE_REFUSALS,
    auth=auth.verified_data_admin,
)
def grant_approve(request: HttpRequest, grant_id: int, body: GrantApproveIn) -> Any:
    """Approve a request, possibly for fewer fields or until an earlier date."""
    admin = _user(request)
    return services.grant_approve(
        grant=selectors.grant_for_user(user=admin, pk=grant_id),
        actor=admin,
        fields=body.fields,
        valid_until=body.valid_until,
        note=body.note,
    )


@router.post(
    "/grants/{grant_id}/reject",
    response={200: GrantOut} | CHANGE_REFUSALS,
    auth=auth.verified_data_admin,
)
def grant_reject(request: HttpRequest, grant_id: int, body: GrantNoteIn) -> Any:
    admin = _user(request)
    return services.grant_reject(
        grant=selectors.grant_for_user(user=admin, pk=grant_id), actor=admin, note=body.note
    )


@router.post(
    "/grants/{grant_id}/revoke",
    response={200: GrantOut} | CHANGE_REFUSALS,
    auth=auth.verified_data_admin,
)
def grant_revoke(request: HttpRequest, grant_id: int, body: GrantNoteIn) -> Any:
    """Revoke an approved grant: the consumer's next call is refused."""
    admin = _user(request)
    return services.grant_revoke(
        grant=selectors.grant_for_user(user=admin, pk=grant_id), actor=admin, note=body.note
    )


# --- the subject's own view: 数据使用记录 and 授权用数 ---------------------------------


@router.get("/access-log", response={200: list[AccessOut]} | REFUSALS, auth=auth.data_subject)
@paginate(PageNumberPagination, page_size=25, max_page_size=100)
def access_log(request: HttpRequest) -> Any:
    """Every read of your (or your organization's) data: who, what, when and why."""
    return selectors.access_log(user=_user(request))


@router.get("/consents", response={200: list[DataConsentOut]} | REFUSALS, auth=auth.data_subject)
def consents(request: HttpRequest) -> Any:
    """Your consents for departments to read your conditional data, newest first."""
    return selectors.data_consents(user=_user(request))


@router.post("/consents", response={200: DataConsentOut} | LOOKUP_REFUSALS, auth=auth.data_subject)
def consent_grant(request: HttpRequest, body: DataConsentIn) -> Any:
    """授权用数: let a department read your data in a conditional dataset until a date."""
    return services.data_consent_grant(
        dataset=services.dataset_get(body.dataset),
        department=people_selectors.department_get(code=body.department),
        purpose=body.purpose.value,
        valid_until=body.valid_until,
        actor=_user(request),
    )


@router.delete(
    "/consents/{consent_id}", response={204: None} | LOOKUP_REFUSALS, auth=auth.data_subject
)
def consent_withdraw(request: HttpRequest, consent_id: int) -> Any:
    """Withdraw a consent: the department's next query is refused."""
    user = _user(request)
    consent = selectors.data_consents(user=user).filter(pk=consent_id).first()
    if consent is None:
        raise NotFoundError(_("No such authorization."), code="consent_not_found")
    licensing_services.consent_withdraw(consent=consent, actor=user)
    return Status(204, None)
