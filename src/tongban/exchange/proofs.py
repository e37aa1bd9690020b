"""电子证明: proofs generated on demand from the issuing department's own data.

A citizen asks for a proof for a stated purpose; the department that issues it reads the
person's rows of the dataset it provides itself (no sharing grant: it is its own data, but
the read is audited like any read of personal data), a per-type builder turns them into the
surface fields, and `license_issue` validates and signs them under the department's seal.
The signer is the department's system account (自动签发账号): a staff account nobody can
log in to, holding an ordinary seal grant marked `automated`, so every signature names the
seal and the grant as a clerk's would."""

import datetime as dt
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from tongban.audit.services import audit_record
from tongban.catalog.models import LicenseType
from tongban.core.errors import (
    ConflictError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitedError,
    TongbanError,
    ValidationError,
)
from tongban.core.i18n import translated
from tongban.licensing.models import License, SealGrant
from tongban.licensing.services import license_issue, seal_current, seal_grant_create
from tongban.people import services as people_services
from tongban.people.models import Department, Person, User

from .models import Dataset

PURPOSE_MAX = 40  # the proof types' surface schemas allow 40 characters
PROOFS_PER_DAY = 10
"""New proofs one person may be issued a day; repeats of the same request are not counted."""
SIGNER_SUFFIX = "-proof-signer"


class ProofTypeUnknown(NotFoundError):
    code = "proof_type_unknown"
    default_message = _("This proof cannot be issued online.")


class ProofPurposeInvalid(ValidationError):
    code = "proof_purpose_invalid"
    default_message = _("State what the proof is for in at most 40 characters.")


class ProofDataMissing(NotFoundError):
    code = "proof_data_missing"
    default_message = _(
        "The issuing department holds no data about you for this proof. Please apply at its "
        "service counter."
    )

    def __init__(self, department: Department) -> None:
        super().__init__(
            _(
                "%(department)s holds no data about you for this proof. Please apply at its "
                "service counter."
            )
            % {"department": translated(department, "name")},
            department=department.code,
        )


class ProofCounterRequired(ConflictError):
    code = "proof_counter_required"
    default_message = _(
        "This proof cannot be issued online for you. Please apply at the issuing department's "
        "service counter."
    )

    def __init__(self, department: Department) -> None:
        super().__init__(
            _(
                "This proof cannot be issued online for you. Please apply at the service "
                "counter of %(department)s."
            )
            % {"department": translated(department, "name")},
            department=department.code,
        )


class ProofUnavailable(TongbanError):
    code = "proof_unavailable"
    status = 503
    default_message = _("Online issuance of this proof is not set up yet.")


class ProofSignerConflict(ConflictError):
    code = "proof_signer_conflict"
    default_message = _("The system account name is taken by an account that can log in.")


# --- builders: one per proof type --------------------------------------------------------


@dataclass(frozen=True)
class ProofRequest:
    """What a builder works from: whose proof, the rows read, why, and when."""

    person: Person
    department: Department
    dataset: Dataset
    rows: list[dict[str, Any]]
    purpose: str
    today: dt.date


@dataclass(frozen=True)
class ProofSpec:
    """An on-demand proof type: the dataset of its issuer it is built from, the fields the
    builder reads (and the audit entry names), and the builder."""

    license_type: str
    dataset: str
    fields: tuple[str, ...]
    build: Callable[[ProofRequest], dict[str, Any]]


def _date(value: Any) -> dt.date | None:
    try:
        return dt.date.fromisoformat(str(value))
    except ValueError:
        return None


def _chinese_date(day: dt.date) -> str:
    return f"{day.year}年{day.month}月{day.day}日"


# The surface text is the proof's content, issued in Chinese like its paper form; it is data,
# so it is not translated.


def residence_build(request: ProofRequest) -> dict[str, Any]:
    """居住证明 from the population register: the registered address and since when."""
    rows = [
        (since, row)
        for row in request.rows
        if row.get("address") and (since := _date(row.get("registered_since")))
    ]
    if not rows:
        raise ProofDataMissing(request.department)
    since, row = max(rows, key=lambda pair: pair[0])
    return {
        "residence_address": row["address"],
        "resided_since": since.isoformat(),
        "attested_matter": (
            f"经核查人口基础信息，{request.person.name}自{_chinese_date(since)}起"
            "登记居住于上述地址，特此证明。"
        ),
        "purpose": request.purpose,
        "issuing_unit": request.department.name,
    }


def no_criminal_record_build(request: ProofRequest) -> dict[str, Any]:
    """无犯罪记录证明: only when every row says there is no record; a record means the
    person applies at the counter, where the police handle it in person."""
    flags = [row.get("has_record") for row in request.rows]
    if any(flag is True for flag in flags):
        raise ProofCounterRequired(request.department)
    dates = [_date(row.get("checked_until")) for row in request.rows]
    checked = [day for day in dates if day is not None]
    if not flags or any(flag is not False for flag in flags) or len(checked) != len(dates):
        raise ProofDataMissing(request.department)
    return {
        "query_result": "未发现有犯罪记录",
        # With several rows, the proof covers only what all of them cover.
        "checked_until": min(checked).isoformat(),
        "purpose": request.purpose,
        "issuing_unit": request.department.name,
    }


NO_MARRIAGE_RECORD = "无婚姻登记记录"
# The registration a marriage row records, as the proof names it: registries write "结婚" or
# "结婚登记" alike.
REGISTRATIONS = {
    "结婚": "结婚登记",
    "结婚登记": "结婚登记",
    "离婚": "离婚登记",
    "离婚登记": "离婚登记",
    "撤销婚姻": "撤销婚姻",
    "宣告婚姻无效": "宣告婚姻无效",
}


def marriage_record_build(request: ProofRequest) -> dict[str, Any]:
    """婚姻登记记录证明: every registration of the person, oldest first. No row means no
    registration — but only if the registry's data is loaded at all, or an empty database
    would certify everyone as never married. A registration the proof cannot name is left to
    the counter rather than guessed."""
    if not request.dataset.records.exists():
        raise ProofDataMissing(request.department)
    rows = []
    for row in request.rows:
        day = _date(row.get("registered_on"))
        if day is None:
            raise ProofDataMissing(request.department)
        registration = REGISTRATIONS.get(str(row.get("event") or "").strip())
        if registration is None:
            raise ProofCounterRequired(request.department)
        rows.append((day, registration, row))
    rows.sort(key=lambda entry: entry[0])
    lines = []
    for number, (day, registration, row) in enumerate(rows, start=1):
        parts = [f"{number}. {registration}", f"登记日期{day.isoformat()}"]
        if row.get("spouse_name"):
            parts.append(f"对方姓名{row['spouse_name']}")
        if row.get("registry"):
            parts.append(f"登记机关{row['registry']}")
        lines.append("，".join(parts))
    return {
        "checked_on": request.today.isoformat(),
        "record_count": len(rows),
        "latest_registration": rows[-1][1] if rows else NO_MARRIAGE_RECORD,
        "records": "；".join(lines) or NO_MARRIAGE_RECORD,
        "purpose": request.purpose,
    }


PROOFS = {
    spec.license_type: spec
    for spec in (
        ProofSpec(
            "LT-RESIDENCE-PROOF", "population", ("address", "registered_since"), residence_build
        ),
        ProofSpec(
            "LT-NO-CRIMINAL-RECORD",
            "criminal_record",
            ("has_record", "checked_until"),
            no_criminal_record_build,
        ),
        ProofSpec(
            "LT-MARRIAGE-RECORD",
            "marriage",
            ("event", "registered_on", "spouse_name", "registry"),
            marriage_record_build,
        ),
    )
}


# --- reads --------------------------------------------------------------------------------


@dataclass(frozen=True)
class ProofOffer:
    """A proof a citizen can get online now, and the data it is made from."""

    license_type: LicenseType
    department: Department
    dataset: Dataset
    fields: list[dict[str, Any]]  # the dataset's definitions of the fields read


def _proof_types() -> dict[str, LicenseType]:
    return {
        t.code: t
        for t in LicenseType.objects.filter(
            code__in=list(PROOFS), kind=LicenseType.Kind.PROOF
        ).exclude(standard_code=None)
    }


def automated_grant(license_type: LicenseType, department: Department) -> SealGrant | None:
    """The automated grant in force for this type under the department's seal, held by an
    account that still cannot log in (also used by instant approval, 秒批)."""
    now = timezone.now()
    grant = (
        SealGrant.objects.select_related("user", "seal")
        .filter(
            automated=True,
            license_types=license_type,
            revoked_at__isnull=True,
            valid_from__lte=now,
            valid_until__gt=now,
            seal__department=department,
            seal__retired_at__isnull=True,
            seal__valid_from__lte=now,
            seal__valid_until__gt=now,
            user__role=User.Role.STAFF,
            user__department=department,
            user__is_active=False,
        )
        .order_by("-valid_from")
        .first()
    )
    if grant is None or grant.user.has_usable_password():
        return None
    return grant


def proofs_offered() -> list[ProofOffer]:
    """开具证明: the proof types a citizen can get online now (those with a signer in force),
    each with its issuing department and the fields of its data."""
    types = _proof_types()
    datasets = {
        d.code: d
        for d in Dataset.objects.select_related("provider").filter(
            code__in=[spec.dataset for spec in PROOFS.values()]
        )
    }
    offers = []
    for code, spec in PROOFS.items():
        license_type, dataset = types.get(code), datasets.get(spec.dataset)
        if license_type is None or dataset is None:
            continue
        if automated_grant(license_type, dataset.provider) is None:
            continue
        fields = [f for f in dataset.fields if f["key"] in spec.fields]
        offers.append(ProofOffer(license_type, dataset.provider, dataset, fields))
    return offers


# --- writes -------------------------------------------------------------------------------


def proof_holder(actor: User) -> Person:
    """The person a proof is about: always the citizen asking, never anyone else."""
    if actor.role != User.Role.CITIZEN or actor.person is None:
        raise PermissionDeniedError(
            _("Only a citizen can ask for a proof about themselves."), code="proof_citizens_only"
        )
    return actor.person


def _purpose_checked(purpose: str) -> str:
    purpose = " ".join(str(purpose).split())
    if not purpose or len(purpose) > PURPOSE_MAX:
        raise ProofPurposeInvalid(field="purpose")
    return purpose


@transaction.atomic
def proof_issue(*, license_type_code: str, purpose: str, actor: User) -> License:
    """开具电子证明: issue a proof about the citizen themself, built from the issuing
    department's data, for the purpose stated. The same proof asked for the same purpose on
    the same day is the one already issued, not a new one. Refusals change nothing."""
    person = proof_holder(actor)
    spec = PROOFS.get(license_type_code)
    license_type = _proof_types().get(license_type_code)
    if spec is None or license_type is None:
        raise ProofTypeUnknown()
    purpose = _purpose_checked(purpose)
    # One request per person at a time, so that the repeat check and the daily limit hold
    # when the same request arrives twice at once.
    Person.objects.select_for_update().get(pk=person.pk)
    today = timezone.localdate()
    issued_today = License.objects.filter(
        holder_person=person,
        license_type__code__in=list(PROOFS),
        grant__automated=True,
        issued_at__gte=timezone.make_aware(dt.datetime.combine(today, dt.time.min)),
    )
    repeat = (
        issued_today.filter(
            license_type=license_type, surface__purpose=purpose, status=License.Status.VALID
        )
        .order_by("-issued_at")
        .first()
    )
    if repeat is not None:
        return repeat
    if issued_today.count() >= PROOFS_PER_DAY:
        raise RateLimitedError(code="proof_daily_limit", limit=PROOFS_PER_DAY, per="day")
    dataset = Dataset.objects.select_related("provider").filter(code=spec.dataset).first()
    if (
        dataset is None
        or not license_type.issuing_departments.filter(pk=dataset.provider_id).exists()
    ):
        raise ProofUnavailable()
    grant = automated_grant(license_type, dataset.provider)
    if grant is None:
        raise ProofUnavailable()
    rows = [
        {key: data.get(key) for key in spec.fields}
        for data in dataset.records.filter(subject=person.resident_id).values_list(
            "data", flat=True
        )
    ]
    surface = spec.build(
        ProofRequest(
            person=person,
            department=dataset.provider,
            dataset=dataset,
            rows=rows,
            purpose=purpose,
            today=today,
        )
    )
    audit_record(
        action="exchange.proof_read",
        actor=actor,
        target=dataset,
        subject=("person", person.resident_id),
        purpose=purpose,
        after={
            "consumer": dataset.provider.code,
            "dataset": dataset.code,
            "fields": list(spec.fields),
            "rows": len(rows),
            "legal_basis": dataset.legal_basis,
            "license_type": license_type.code,
        },
    )
    return license_issue(
        license_type=license_type, holder=person, surface=surface, actor=grant.user
    )


def system_account(department: Department, actor: Any, *, suffix: str = SIGNER_SUFFIX) -> User:
    """The department's system account named by `suffix` (one per kind of automated
    signing), made on first use: staff of the department, inactive and without a usable
    password, so nobody can log in to it."""
    username = f"{department.code}{suffix}"
    existing = User.objects.filter(username__iexact=username).first()
    if existing is not None:
        if (
            existing.role != User.Role.STAFF
            or existing.department_id != department.pk
            or existing.is_active
            or existing.has_usable_password()
        ):
            raise ProofSignerConflict(username=existing.username)
        return existing
    # user_create wants a password; this one is never stored or shown and is replaced at once.
    user = people_services.user_create(
        username=username,
        password=secrets.token_urlsafe(32),
        role=User.Role.STAFF,
        department=department,
        actor=actor,
    )
    user.set_unusable_password()
    user.is_active = False
    user.save(update_fields=["password", "is_active"])
    audit_record(
        action="proof.signer_create",
        actor=actor,
        target=user,
        after={"department": department.code, "is_active": False, "usable_password": False},
    )
    return user


@transaction.atomic
def proof_signers_setup(*, actor: User | str) -> list[SealGrant]:
    """Give every department that issues on-demand proofs from its own data a system account
    holding an automated grant of its current seal for those proof types (自动签发). Run by a
    data or system administrator, or by a system process such as seed-demo; idempotent.
    Returns the automated grants in force; a department without a current seal is skipped."""
    if isinstance(actor, User) and actor.role not in (User.Role.DATA_ADMIN, User.Role.SYS_ADMIN):
        raise PermissionDeniedError(_("Only administrators set up automated proof issuance."))
    types = _proof_types()
    by_department: dict[int, tuple[Department, list[LicenseType]]] = {}
    datasets = Dataset.objects.select_related("provider").filter(
        code__in=[spec.dataset for spec in PROOFS.values()]
    )
    providers = {d.code: d.provider for d in datasets}
    for code, spec in PROOFS.items():
        license_type, provider = types.get(code), providers.get(spec.dataset)
        if license_type is None or provider is None:
            continue
        if not license_type.issuing_departments.filter(pk=provider.pk).exists():
            continue
        by_department.setdefault(provider.pk, (provider, []))[1].append(license_type)
    grants = []
    for department, wanted in by_department.values():
        grant = automated_grant_ensure(department=department, license_types=wanted, actor=actor)
        if grant is not None:
            grants.append(grant)
    return grants


def automated_grant_ensure(
    *,
    department: Department,
    license_types: list[LicenseType],
    actor: Any,
    suffix: str = SIGNER_SUFFIX,
) -> SealGrant | None:
    """An automated grant of the department's current seal for these types, held by its
    system account named by `suffix`: the one in force, or a new one. None when the
    department has no current seal. The caller checks who `actor` is."""
    seal = seal_current(department=department)
    if seal is None:
        return None
    signer = system_account(department, actor, suffix=suffix)
    now = timezone.now()
    in_force = (
        SealGrant.objects.filter(
            seal=seal,
            user=signer,
            automated=True,
            revoked_at__isnull=True,
            valid_from__lte=now,
            valid_until__gt=now,
        )
        .prefetch_related("license_types")
        .order_by("-valid_from")
    )
    grant = next((g for g in in_force if set(license_types) <= set(g.license_types.all())), None)
    if grant is None:
        grant = seal_grant_create(
            seal=seal,
            user=signer,
            license_types=license_types,
            valid_until=seal.valid_until,
            automated=True,
            actor=actor,
        )
    return grant
