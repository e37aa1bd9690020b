"""Reads of the exchange: the catalog, grants as each role may see them, the access log a
person or organization sees about itself, and access statistics."""

import datetime as dt
from dataclasses import dataclass
from typing import Any

from django.db.models import Count, Q, QuerySet
from django.db.models.fields.json import KT
from django.db.models.functions import TruncDate
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from tongban.audit.models import AuditEntry
from tongban.core.errors import NotFoundError, PermissionDeniedError
from tongban.licensing.models import Consent
from tongban.people.models import Department, User

from .models import AccessGrant, Dataset, MachineCredential, SharingClass

ACCESS_ACTIONS = ("exchange.query", "exchange.verify", "exchange.proof_read")
"""Audit actions that are a department reading someone's shared data (a proof's data is
read by the issuing department for the person who asked)."""


def datasets_list(*, query: str = "", provider: str = "") -> QuerySet[Dataset]:
    datasets = Dataset.objects.select_related("provider").order_by("code")
    if provider:
        datasets = datasets.filter(provider__code=provider)
    if query:
        datasets = datasets.filter(
            Q(name__icontains=query) | Q(name_en__icontains=query) | Q(code__icontains=query)
        )
    return datasets


def grants_for_user(*, user: User, status: str = "") -> QuerySet[AccessGrant]:
    """Staff see their own department's grants; data administrators see all."""
    grants = AccessGrant.objects.select_related("consumer", "dataset", "dataset__provider")
    if user.role == User.Role.DATA_ADMIN:
        pass
    elif user.role == User.Role.STAFF and user.department_id is not None:
        grants = grants.filter(consumer_id=user.department_id)
    else:
        raise PermissionDeniedError(_("Only department staff and data administrators see grants."))
    if status:
        grants = grants.filter(status=status)
    return grants.order_by("-requested_at", "-pk")


def grant_for_user(*, user: User, pk: int) -> AccessGrant:
    grant = grants_for_user(user=user).filter(pk=pk).first()
    if grant is None:
        raise NotFoundError(_("No such grant."), code="grant_not_found")
    return grant


def grants_in_force(
    *, department: Department, today: dt.date | None = None
) -> QuerySet[AccessGrant]:
    today = today or timezone.localdate()
    return AccessGrant.objects.filter(
        consumer=department,
        status=AccessGrant.Status.APPROVED,
        valid_from__lte=today,
        valid_until__gte=today,
    ).select_related("dataset")


def user_subject(user: User) -> tuple[str, str]:
    """Whose data a citizen or an organization's agent may watch: their own."""
    if user.role == User.Role.CITIZEN and user.person is not None:
        return ("person", user.person.resident_id)
    if user.role == User.Role.ORG_AGENT and user.organization is not None:
        return ("organization", user.organization.credit_code)
    raise PermissionDeniedError(_("Only a person or an organization's agent has an access log."))


@dataclass(frozen=True)
class Access:
    """One line of 数据使用记录: who read what of mine, when, why."""

    seq: int
    at: dt.datetime
    action: str
    consumer: str  # department name
    dataset: str  # dataset name
    fields: list[str]  # field names as the catalog names them
    purpose: str
    legal_basis: str
    question: str
    result: bool | None


def access_log(*, user: User) -> list[Access]:
    """Every read of the user's (or their organization's) shared data, newest first."""
    kind, code = user_subject(user)
    entries = AuditEntry.objects.filter(
        subject_type=kind, subject_id=code, action__in=ACCESS_ACTIONS
    ).order_by("-seq")
    return accesses_described(list(entries))


def accesses_described(entries: list[AuditEntry]) -> list[Access]:
    """Audit entries as a person reads them: names instead of codes."""
    after = [entry.after or {} for entry in entries]
    departments = dict(
        Department.objects.filter(code__in={a.get("consumer") for a in after}).values_list(
            "code", "name"
        )
    )
    datasets = {
        d.code: d for d in Dataset.objects.filter(code__in={a.get("dataset") for a in after})
    }
    accesses = []
    for entry, data in zip(entries, after, strict=True):
        dataset = datasets.get(data.get("dataset", ""))
        names = {f["key"]: f["name"] for f in dataset.fields} if dataset else {}
        accesses.append(
            Access(
                seq=entry.seq,
                at=entry.at,
                action=entry.action,
                consumer=departments.get(data.get("consumer", ""), data.get("consumer", "")),
                dataset=dataset.name if dataset else data.get("dataset", ""),
                fields=[names.get(f, f) for f in data.get("fields", [])],
                purpose=entry.purpose,
                legal_basis=data.get("legal_basis", ""),
                question=data.get("question", ""),
                result=data.get("result"),
            )
        )
    return accesses


def data_consents(*, user: User) -> QuerySet[Consent]:
    """The user's consents for conditional data (授权用数), newest first."""
    kind, code = user_subject(user)
    holder = (
        {"holder_person__resident_id": code}
        if kind == "person"
        else {"holder_organization__credit_code": code}
    )
    return (
        Consent.objects.filter(**holder, license__isnull=True)
        .select_related("grantee_department")
        .order_by("-created_at")
    )


def consentable_datasets(*, user: User) -> QuerySet[Dataset]:
    """Conditional datasets about the user's kind of subject: what they may consent to."""
    kind, _code = user_subject(user)
    return Dataset.objects.filter(
        sharing_class=SharingClass.CONDITIONAL, subject_kind__in=[kind, Dataset.SubjectKind.ANY]
    ).order_by("code")


@dataclass
class AccessStats:
    total: int
    queries: int
    verifications: int
    proof_reads: int
    by_consumer: list[tuple[str, int]]
    by_dataset: list[tuple[str, int]]
    by_day: list[tuple[dt.date, int]]
    grants_by_status: dict[str, int]


def access_stats(*, days: int = 30, now: dt.datetime | None = None) -> AccessStats:
    """Reads of shared data over the last `days` days, for data administrators. Counted in
    the database, so the cost does not grow with the rows read into Python."""
    now = now or timezone.now()
    entries = AuditEntry.objects.filter(
        action__in=ACCESS_ACTIONS, at__gte=now - dt.timedelta(days=days)
    )

    def counted(*group: Any, **named: Any) -> list[tuple[Any, int]]:
        rows = entries.annotate(**named).values_list(*(group or named)).annotate(n=Count("seq"))
        return sorted(((key, n) for key, n in rows), key=lambda row: -row[1])

    actions = dict(counted("action"))
    consumers = counted(key=KT("after__consumer"))
    datasets = counted(key=KT("after__dataset"))
    per_day = dict(counted(key=TruncDate("at", tzinfo=timezone.get_current_timezone())))
    department_names = dict(
        Department.objects.filter(code__in=[c for c, _n in consumers]).values_list("code", "name")
    )
    dataset_names = dict(
        Dataset.objects.filter(code__in=[c for c, _n in datasets]).values_list("code", "name")
    )
    today = timezone.localdate(now)
    return AccessStats(
        total=sum(actions.values()),
        queries=actions.get("exchange.query", 0),
        verifications=actions.get("exchange.verify", 0),
        proof_reads=actions.get("exchange.proof_read", 0),
        by_consumer=[(department_names.get(c, c), n) for c, n in consumers],
        by_dataset=[(dataset_names.get(c, c), n) for c, n in datasets],
        by_day=[
            (day, per_day.get(day, 0))
            for day in (today - dt.timedelta(days=i) for i in range(days - 1, -1, -1))
        ],
        grants_by_status=dict(
            AccessGrant.objects.values_list("status")
            .annotate(n=Count("pk"))
            .values_list("status", "n")
        ),
    )


def credentials_list(*, user: User) -> QuerySet[MachineCredential]:
    if user.role not in (User.Role.DATA_ADMIN, User.Role.SYS_ADMIN):
        raise PermissionDeniedError(_("Only data administrators manage machine credentials."))
    return MachineCredential.objects.select_related("department").order_by(
        "department__code", "-created_at"
    )
