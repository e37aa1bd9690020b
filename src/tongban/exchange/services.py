"""Every state change of the exchange, and the audited reads of shared data.

A query or a verification is a read of personal data, so it writes an audit entry in the
same transaction as the answer it returns: no answer leaves without its log line."""

import datetime as dt
import hashlib
import json
import secrets
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from django.core.cache import cache
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from stdnum.cn import uscc

from tongban.audit.services import audit_record
from tongban.core.errors import PermissionDeniedError, RateLimitedError, TongbanError
from tongban.core.ids import credit_code_validate, mask_id, resident_id_validate
from tongban.licensing.models import Consent, License
from tongban.licensing.services import CONSENT_MAX_DAYS
from tongban.people.models import Department, Person, User

from . import remote, schema, verifications
from .errors import (
    ConsentMissing,
    CredentialInvalid,
    DatasetNotFound,
    DatasetNotShared,
    ExchangeInputInvalid,
    FieldsNotGranted,
    GrantExpired,
    GrantMissing,
    GrantRevoked,
    GrantStateInvalid,
    IdempotencyKeyReused,
    PurposeNotGranted,
    VerificationOnly,
)
from .models import (
    AccessGrant,
    Dataset,
    ExchangeRequest,
    MachineCredential,
    Purpose,
    Record,
    SharingClass,
)

GRANT_MAX_DAYS = 3 * 366
CREDENTIAL_DAYS = 365
ROTATION_GRACE = dt.timedelta(hours=24)
DAY = dt.timedelta(days=1)
TOKEN_PREFIX = "tbx"  # noqa: S105 - a label, not a secret
IDEMPOTENCY_TTL = dt.timedelta(hours=24)


# --- the data catalog ---------------------------------------------------------------


DATASET_FIELDS = (
    "name",
    "name_en",
    "description",
    "description_en",
    "sharing_class",
    "subject_kind",
    "subject_field",
    "update_frequency",
    "legal_basis",
    "source",
    "endpoint",
)


@transaction.atomic
def dataset_catalog_load(*, data: Mapping[str, Any], actor: Any) -> int:
    """Create or update datasets from a catalog document; return how many were created.
    Idempotent, all or nothing; an entry that does not validate stops the whole load."""
    created = 0
    for row in data.get("datasets", []):
        code = row.get("code", "?")
        try:
            fields = schema.field_definitions_check(
                row.get("fields"), subject_field=row.get("subject_field", "")
            )
            provider = Department.objects.get(code=row["provider"])
            values = {key: row[key] for key in DATASET_FIELDS if key in row}
            for key, choices in (
                ("sharing_class", SharingClass.values),
                ("subject_kind", Dataset.SubjectKind.values),
                ("source", Dataset.Source.values),
            ):
                if key in values and values[key] not in choices:
                    raise ValueError(f"{key} {values[key]!r} is not one of {choices}")
        except (KeyError, ValueError, Department.DoesNotExist) as exc:
            raise ExchangeInputInvalid(
                _("Dataset %(code)s is not valid: %(error)s") % {"code": code, "error": exc}
            ) from None
        dataset, was_created = Dataset.objects.get_or_create(
            code=code, defaults=values | {"fields": fields, "provider": provider}
        )
        if was_created:
            created += 1
            audit_record(action="dataset.create", actor=actor, target=dataset, after=values)
            continue
        before = {key: getattr(dataset, key) for key in values} | {
            "fields": dataset.fields,
            "provider": dataset.provider.code,
        }
        after = values | {"fields": fields, "provider": provider.code}
        if before != after:
            for key, value in values.items():
                setattr(dataset, key, value)
            dataset.fields, dataset.provider = fields, provider
            dataset.save()
            audit_record(
                action="dataset.update", actor=actor, target=dataset, before=before, after=after
            )
    return created


def dataset_get(code: str) -> Dataset:
    dataset = Dataset.objects.select_related("provider").filter(code=code).first()
    if dataset is None:
        raise DatasetNotFound()
    return dataset


def _dataset_with_grants(code: str, caller: "Caller") -> tuple[Dataset, list[AccessGrant]]:
    """The shared dataset named, and the caller's decided grants on it (newest first).

    One query when the caller holds grants on it, as it does on every call that is
    answered: the grant rows bring their dataset along."""
    grants = list(
        AccessGrant.objects.filter(
            consumer=caller.department,
            dataset__code=code,
            status__in=[AccessGrant.Status.APPROVED, AccessGrant.Status.REVOKED],
        )
        .select_related("dataset")
        .order_by()  # sorted here: an ORDER BY costs more to build than to do for a few rows
    )
    grants.sort(key=lambda g: (g.requested_at, g.pk), reverse=True)
    dataset = grants[0].dataset if grants else dataset_get(code)
    if dataset.sharing_class == SharingClass.NONE:
        raise DatasetNotShared()
    return dataset, grants


# --- sharing grants (共享授权) --------------------------------------------------------


def _fields_checked(dataset: Dataset, fields: Sequence[str]) -> list[str]:
    fields = list(dict.fromkeys(fields))
    if not fields:
        raise ExchangeInputInvalid(_("Choose at least one field."), field="fields")
    unknown = [f for f in fields if f not in dataset.field_keys]
    if unknown:
        raise ExchangeInputInvalid(
            _("This dataset has no field %(fields)s.") % {"fields": ", ".join(unknown)},
            field="fields",
        )
    return fields


@transaction.atomic
def grant_request(
    *,
    dataset: Dataset,
    fields: Sequence[str],
    mode: str,
    purpose: str,
    legal_basis: str,
    valid_until: dt.date,
    full_id: bool = False,
    actor: User,
) -> AccessGrant:
    """Staff ask, for their department, to read fields of a dataset (申请共享)."""
    if actor.role != User.Role.STAFF or actor.department_id is None:
        raise PermissionDeniedError(_("Only department staff request data sharing."))
    if dataset.sharing_class == SharingClass.NONE:
        raise DatasetNotShared()
    if dataset.provider_id == actor.department_id:
        raise ExchangeInputInvalid(_("Your department provides this dataset already."))
    fields = _fields_checked(dataset, fields)
    if mode not in AccessGrant.Mode.values:
        raise ExchangeInputInvalid(_("Choose to read fields or to verify."), field="mode")
    if purpose not in Purpose.values:
        raise ExchangeInputInvalid(_("Choose a purpose from the list."), field="purpose")
    legal_basis = legal_basis.strip()
    if not legal_basis or len(legal_basis) > 200:
        raise ExchangeInputInvalid(
            _("State the legal basis in at most 200 characters."), field="legal_basis"
        )
    today = timezone.localdate()
    if not today <= valid_until <= today + dt.timedelta(days=GRANT_MAX_DAYS):
        raise ExchangeInputInvalid(
            _("A grant lasts from today for at most %(days)s days.") % {"days": GRANT_MAX_DAYS},
            field="valid_until",
        )
    grant = AccessGrant.objects.create(
        consumer_id=actor.department_id,
        dataset=dataset,
        mode=mode,
        fields=fields,
        full_id=full_id,
        purpose=purpose,
        legal_basis=legal_basis,
        valid_from=today,
        valid_until=valid_until,
        requested_by=actor,
    )
    audit_record(action="grant.request", actor=actor, target=grant, after=_grant_snapshot(grant))
    return grant


def _grant_snapshot(grant: AccessGrant) -> dict[str, Any]:
    return {
        "consumer": grant.consumer.code,
        "dataset": grant.dataset.code,
        "mode": grant.mode,
        "fields": grant.fields,
        "full_id": grant.full_id,
        "purpose": grant.purpose,
        "legal_basis": grant.legal_basis,
        "valid_until": grant.valid_until,
        "status": grant.status,
    }


def _require_data_admin(actor: User) -> None:
    if actor.role != User.Role.DATA_ADMIN:
        raise PermissionDeniedError(_("Only data administrators decide on sharing grants."))


def _grant_locked(grant: AccessGrant) -> AccessGrant:
    return (
        AccessGrant.objects.select_for_update(of=("self",))
        .select_related("consumer", "dataset")
        .get(pk=grant.pk)
    )


@transaction.atomic
def grant_approve(
    *,
    grant: AccessGrant,
    actor: User,
    fields: Sequence[str] | None = None,
    valid_until: dt.date | None = None,
    note: str = "",
) -> AccessGrant:
    """Approve a request, possibly for fewer fields or a shorter time (审批, 可缩减)."""
    _require_data_admin(actor)
    grant = _grant_locked(grant)
    if grant.status != AccessGrant.Status.REQUESTED:
        raise GrantStateInvalid()
    before = _grant_snapshot(grant)
    if fields is not None:
        fields = _fields_checked(grant.dataset, fields)
        if not set(fields) <= set(grant.fields):
            raise ExchangeInputInvalid(
                _("An approval may only narrow the fields requested."), field="fields"
            )
        grant.fields = fields
    if valid_until is not None:
        if not grant.valid_from <= valid_until <= grant.valid_until:
            raise ExchangeInputInvalid(
                _("An approval may only shorten the time requested."), field="valid_until"
            )
        grant.valid_until = valid_until
    grant.status = AccessGrant.Status.APPROVED
    return _grant_decided(grant, actor=actor, note=note, action="grant.approve", before=before)


@transaction.atomic
def grant_reject(*, grant: AccessGrant, actor: User, note: str) -> AccessGrant:
    _require_data_admin(actor)
    grant = _grant_locked(grant)
    if grant.status != AccessGrant.Status.REQUESTED:
        raise GrantStateInvalid()
    before = _grant_snapshot(grant)
    grant.status = AccessGrant.Status.REJECTED
    return _grant_decided(grant, actor=actor, note=note, action="grant.reject", before=before)


@transaction.atomic
def grant_revoke(*, grant: AccessGrant, actor: User, note: str) -> AccessGrant:
    """Revoke an approved grant; the consumer's next call is refused."""
    _require_data_admin(actor)
    grant = _grant_locked(grant)
    if grant.status != AccessGrant.Status.APPROVED:
        raise GrantStateInvalid()
    before = _grant_snapshot(grant)
    grant.status = AccessGrant.Status.REVOKED
    return _grant_decided(grant, actor=actor, note=note, action="grant.revoke", before=before)


def _grant_decided(
    grant: AccessGrant, *, actor: User, note: str, action: str, before: dict[str, Any]
) -> AccessGrant:
    note = note.strip()
    if len(note) > 200:
        raise ExchangeInputInvalid(_("Keep the note to 200 characters at most."), field="note")
    if action != "grant.approve" and not note:
        raise ExchangeInputInvalid(_("Give a reason."), field="note")
    grant.decided_by, grant.decided_at, grant.decision_note = actor, timezone.now(), note
    grant.save()
    audit_record(
        action=action,
        actor=actor,
        target=grant,
        purpose=note,
        before=before,
        after=_grant_snapshot(grant),
    )
    return grant


# --- consent for conditional data (授权用数) -------------------------------------------


@transaction.atomic
def data_consent_grant(
    *,
    dataset: Dataset,
    department: Department,
    purpose: str,
    valid_until: dt.date,
    actor: User,
    for_person: Person | None = None,
) -> Consent:
    """A person (or an organization's agent) lets a department read their conditional data.
    `for_person`: a citizen agreeing for someone who authorized them to (委托代办, checked
    by the caller) — the consent is that person's, the audit names the agent as actor."""
    holder: dict[str, Any]
    if for_person is not None and actor.role == User.Role.CITIZEN:
        holder = {"holder_person_id": for_person.pk}
        subject = ("person", for_person.resident_id)
        kinds = {Dataset.SubjectKind.PERSON, Dataset.SubjectKind.ANY}
    elif actor.role == User.Role.CITIZEN and actor.person is not None:
        holder = {"holder_person_id": actor.person_id}
        subject = ("person", actor.person.resident_id)
        kinds = {Dataset.SubjectKind.PERSON, Dataset.SubjectKind.ANY}
    elif actor.role == User.Role.ORG_AGENT and actor.organization is not None:
        holder = {"holder_organization_id": actor.organization_id}
        subject = ("organization", actor.organization.credit_code)
        kinds = {Dataset.SubjectKind.ORGANIZATION, Dataset.SubjectKind.ANY}
    else:
        raise PermissionDeniedError(_("Only the person or organization concerned may consent."))
    if dataset.sharing_class != SharingClass.CONDITIONAL or dataset.subject_kind not in kinds:
        raise ExchangeInputInvalid(_("This dataset does not ask for your consent."))
    if purpose not in Purpose.values:
        raise ExchangeInputInvalid(_("Choose a purpose from the list."), field="purpose")
    today = timezone.localdate()
    if not today <= valid_until <= today + dt.timedelta(days=CONSENT_MAX_DAYS):
        raise ExchangeInputInvalid(
            _("An authorization lasts at most %(days)s days.") % {"days": CONSENT_MAX_DAYS},
            field="valid_until",
        )
    consent = Consent.objects.create(
        **holder,
        grantee_department=department,
        dataset_code=dataset.code,
        purpose=purpose,
        valid_until=valid_until,
    )
    audit_record(
        action="consent.grant",
        actor=actor,
        target=consent,
        subject=subject,
        purpose=purpose,
        after={
            "grantee": department.code,
            "dataset": dataset.code,
            "valid_until": valid_until,
        },
    )
    return consent


# --- who is calling ---------------------------------------------------------------


@dataclass(frozen=True)
class Caller:
    """A consumer department's system (machine credential) or one of its verified staff."""

    department: Department
    label: str  # how the audit log names the caller
    rate_limit: int  # calls per minute

    @classmethod
    def staff(cls, user: User) -> "Caller":
        if user.role != User.Role.STAFF or user.department is None:
            raise PermissionDeniedError(_("Only department staff query shared data."))
        return cls(user.department, f"user:{user.pk}:{user.get_username()}", 60)

    @classmethod
    def machine(cls, credential: MachineCredential) -> "Caller":
        return cls(credential.department, credential.audit_label, credential.rate_limit)


def _rate_check(caller: Caller) -> None:
    """At most `rate_limit` calls per minute per caller (a fixed window in the shared cache)."""
    window = int(timezone.now().timestamp() // 60)
    key = f"exchange-rate:{caller.label}:{window}"
    cache.add(key, 0, timeout=120)
    try:
        count = cache.incr(key)
    except ValueError:  # evicted between add and incr
        cache.set(key, 1, timeout=120)
        count = 1
    if count > caller.rate_limit:
        raise RateLimitedError(limit=caller.rate_limit, per="minute")


# --- queries and verifications ----------------------------------------------------


@dataclass
class Answer:
    """What a consumer receives: rows of granted fields, or only a yes/no."""

    request_id: str
    dataset: str
    subject: str
    rows: list[dict[str, Any]] = field(default_factory=list)
    result: bool | None = None
    question: str = ""
    audit_seq: int = 0

    def as_dict(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "request_id": self.request_id,
            "dataset": self.dataset,
            "subject": self.subject,
            "audit_seq": self.audit_seq,
        }
        if self.question:
            body |= {"question": self.question, "result": self.result}
        else:
            body["rows"] = self.rows
        return body


def _resident_id_shaped(number: str) -> bool:
    """Whether a person's or an organization's number is a resident ID. Both have 18
    characters and a credit code may be all digits too: such a number is a resident ID
    unless it is a valid credit code and not a valid resident ID."""
    if len(number) != 18 or not number[:17].isdigit():
        return False
    if not uscc.is_valid(number):
        return True
    try:
        resident_id_validate(number)
    except TongbanError:
        return False
    return True


def _subject_checked(dataset: Dataset, subject: str) -> tuple[str, tuple[str, str] | None]:
    """The normalized subject and how the audit log names it (None: not personal data)."""
    subject = str(subject).strip().upper()
    kind = dataset.subject_kind
    if kind == Dataset.SubjectKind.ANY:
        kind = "person" if _resident_id_shaped(subject) else "organization"
    if kind == "person":
        subject = resident_id_validate(subject)
        return subject, ("person", subject)
    if kind == "organization":
        subject = credit_code_validate(subject)
        return subject, ("organization", subject)
    if not subject or len(subject) > 18:
        raise ExchangeInputInvalid(
            _("Give the resident ID number or credit code of whom you ask about."),
            field="subject",
        )
    return subject, None


def _grant_in_force(
    *, grants: list[AccessGrant], purpose: str, fields: Iterable[str], verify: bool
) -> AccessGrant:
    """Of the caller's decided grants on a dataset, the approved one that covers this call,
    or the precise reason there is none."""
    if purpose not in Purpose.values:
        raise ExchangeInputInvalid(_("Choose a purpose from the list."), field="purpose")
    today = timezone.localdate()
    approved = [g for g in grants if g.status == AccessGrant.Status.APPROVED]
    in_force = [g for g in approved if g.valid_from <= today <= g.valid_until]
    if not in_force:
        if approved:
            raise GrantExpired()
        if grants:
            raise GrantRevoked()
        raise GrantMissing()
    for_purpose = [g for g in in_force if g.purpose == purpose]
    if not for_purpose:
        raise PurposeNotGranted(granted=sorted({g.purpose for g in in_force}))
    if not verify:
        for_purpose = [g for g in for_purpose if g.mode == AccessGrant.Mode.QUERY]
        if not for_purpose:
            raise VerificationOnly()
    wanted = set(fields)
    for grant in for_purpose:
        if wanted <= set(grant.fields):
            return grant
    granted = set().union(*(g.fields for g in for_purpose))
    raise FieldsNotGranted(fields=sorted(wanted - granted))


def _consent_check(*, caller: Caller, dataset: Dataset, subject: tuple[str, str] | None) -> None:
    if dataset.sharing_class != SharingClass.CONDITIONAL or subject is None:
        return
    kind, code = subject
    holder = (
        {"holder_person__resident_id": code}
        if kind == "person"
        else {"holder_organization__credit_code": code}
    )
    if not Consent.objects.filter(
        **holder,
        grantee_department=caller.department,
        dataset_code=dataset.code,
        valid_until__gte=timezone.localdate(),
        withdrawn_at__isnull=True,
    ).exists():
        raise ConsentMissing()


def _rows_read(
    *,
    dataset: Dataset,
    subject: str,
    fields: Sequence[str],
    caller: Caller,
    purpose: str,
    request_id: str,
) -> list[dict[str, Any]]:
    """The subject's rows from wherever the dataset lives, cut down to `fields`. A remote
    provider gets `request_id`, the one the audit entry carries, so both logs match."""
    if dataset.source == Dataset.Source.REMOTE:
        rows = remote.provider_fetch(
            dataset=dataset,
            subject=subject,
            fields=list(fields),
            purpose=purpose,
            consumer=caller.department.code,
            request_id=request_id,
        )
    elif dataset.source == Dataset.Source.LICENSES:
        rows = _license_rows(subject)
    else:
        rows = list(
            Record.objects.filter(dataset=dataset, subject=subject).values_list("data", flat=True)
        )
    return [{key: row.get(key) for key in fields} for row in rows]


def _license_rows(holder_code: str) -> list[dict[str, Any]]:
    licenses = License.objects.filter(
        holder_person__resident_id=holder_code
    ) | License.objects.filter(holder_organization__credit_code=holder_code)
    return [
        {
            "holder_code": holder_code,
            "license_type": lic.license_type.code,
            "license_name": lic.license_type.name,
            "identifier": lic.identifier,
            "status": lic.status,
            "issued_on": timezone.localdate(lic.issued_at).isoformat(),
            "valid_until": lic.valid_until.isoformat() if lic.valid_until else None,
            "issuer": lic.issuer.name,
        }
        for lic in licenses.select_related("license_type", "issuer").order_by("issued_at")
    ]


def _request_digest(kind: str, body: Mapping[str, Any]) -> str:
    return hashlib.sha256(
        json.dumps([kind, body], sort_keys=True, ensure_ascii=False, default=str).encode()
    ).hexdigest()


def _replayed(caller: Caller, key: str | None, digest: str) -> dict[str, Any] | None:
    if not key:
        return None
    if not 1 <= len(key) <= 64:
        raise ExchangeInputInvalid(_("An Idempotency-Key has 1 to 64 characters."))
    earlier = ExchangeRequest.objects.filter(
        consumer=caller.department,
        key=key,
        created_at__gte=timezone.now() - IDEMPOTENCY_TTL,
    ).first()
    if earlier is None:
        return None
    if earlier.request_digest != digest:
        raise IdempotencyKeyReused()
    return earlier.response


def _remember(caller: Caller, key: str | None, digest: str, answer: Answer) -> None:
    if key:
        ExchangeRequest.objects.filter(
            consumer=caller.department, key=key, created_at__lt=timezone.now() - IDEMPOTENCY_TTL
        ).delete()
        ExchangeRequest.objects.create(
            consumer=caller.department, key=key, request_digest=digest, response=answer.as_dict()
        )


def _legal_basis_checked(legal_basis: str) -> str:
    legal_basis = legal_basis.strip()
    if not legal_basis or len(legal_basis) > 200:
        raise ExchangeInputInvalid(
            _("State the legal basis in at most 200 characters."), field="legal_basis"
        )
    return legal_basis


@transaction.atomic
def data_query(
    *,
    caller: Caller,
    dataset_code: str,
    subject: str,
    fields: Sequence[str],
    purpose: str,
    legal_basis: str,
    idempotency_key: str | None = None,
) -> dict[str, Any]:
    """查询: the granted fields of one subject's rows, audited with purpose and legal basis.
    A retry with the same Idempotency-Key returns the first answer and reads nothing."""
    body = {
        "dataset": dataset_code,
        "subject": subject,
        "fields": list(fields),
        "purpose": purpose,
        "legal_basis": legal_basis,
    }
    digest = _request_digest("query", body) if idempotency_key else ""
    replay = _replayed(caller, idempotency_key, digest)
    if replay is not None:
        return replay
    _rate_check(caller)
    dataset, grants = _dataset_with_grants(dataset_code, caller)
    fields = _fields_checked(dataset, fields)
    legal_basis = _legal_basis_checked(legal_basis)
    subject, audit_subject = _subject_checked(dataset, subject)
    grant = _grant_in_force(grants=grants, purpose=purpose, fields=fields, verify=False)
    _consent_check(caller=caller, dataset=dataset, subject=audit_subject)
    request_id = uuid.uuid4().hex
    rows = _rows_read(
        dataset=dataset,
        subject=subject,
        fields=fields,
        caller=caller,
        purpose=purpose,
        request_id=request_id,
    )
    by_key = {f["key"]: f for f in dataset.fields}
    rows = [
        {
            key: schema.value_minimized(by_key[key], value, full_id=grant.full_id)
            for key, value in row.items()
        }
        for row in rows
    ]
    entry = audit_record(
        action="exchange.query",
        actor=caller.label,
        target=grant,
        subject=audit_subject,
        purpose=purpose,
        after={
            "request_id": request_id,
            "consumer": caller.department.code,
            "dataset": dataset.code,
            "fields": fields,
            "legal_basis": legal_basis,
            "rows": len(rows),
        },
    )
    answer = Answer(
        request_id=request_id,
        dataset=dataset.code,
        subject=subject if grant.full_id or audit_subject is None else mask_id(subject),
        rows=rows,
        audit_seq=entry.seq,
    )
    _remember(caller, idempotency_key, digest, answer)
    return answer.as_dict()


@transaction.atomic
def fact_verify(
    *,
    caller: Caller,
    question: str,
    subject: str,
    params: Mapping[str, Any],
    purpose: str,
    legal_basis: str,
    idempotency_key: str | None = None,
) -> dict[str, Any]:
    """核验: a named yes/no question about one subject; only the boolean leaves."""
    body = {
        "question": question,
        "subject": subject,
        "params": dict(params),
        "purpose": purpose,
        "legal_basis": legal_basis,
    }
    digest = _request_digest("verify", body) if idempotency_key else ""
    replay = _replayed(caller, idempotency_key, digest)
    if replay is not None:
        return replay
    _rate_check(caller)
    spec = verifications.question_get(question)
    params = spec.params_checked(params)
    dataset, grants = _dataset_with_grants(spec.dataset, caller)
    legal_basis = _legal_basis_checked(legal_basis)
    subject, audit_subject = _subject_checked(dataset, subject)
    grant = _grant_in_force(grants=grants, purpose=purpose, fields=spec.fields, verify=True)
    _consent_check(caller=caller, dataset=dataset, subject=audit_subject)
    request_id = uuid.uuid4().hex
    rows = _rows_read(
        dataset=dataset,
        subject=subject,
        fields=spec.fields,
        caller=caller,
        purpose=purpose,
        request_id=request_id,
    )
    result = spec.answer(rows, params, timezone.localdate())
    entry = audit_record(
        action="exchange.verify",
        actor=caller.label,
        target=grant,
        subject=audit_subject,
        purpose=purpose,
        after={
            "request_id": request_id,
            "consumer": caller.department.code,
            "dataset": dataset.code,
            "question": spec.name,
            "fields": list(spec.fields),
            "legal_basis": legal_basis,
            "result": result,
        },
    )
    answer = Answer(
        request_id=request_id,
        dataset=dataset.code,
        subject=mask_id(subject) if audit_subject else subject,
        question=spec.name,
        result=result,
        audit_seq=entry.seq,
    )
    _remember(caller, idempotency_key, digest, answer)
    return answer.as_dict()


# --- machine credentials ----------------------------------------------------------


def _token_new() -> tuple[str, str, str]:
    """(key ID, token, SHA-256 of the secret). The token is `tbx_<key id>_<secret>`."""
    key_id = secrets.token_hex(8)
    secret = secrets.token_urlsafe(32)
    return key_id, f"{TOKEN_PREFIX}_{key_id}_{secret}", hashlib.sha256(secret.encode()).hexdigest()


def _require_credential_admin(actor: User) -> None:
    if actor.role not in (User.Role.DATA_ADMIN, User.Role.SYS_ADMIN):
        raise PermissionDeniedError(_("Only data administrators manage machine credentials."))


@transaction.atomic
def credential_create(
    *,
    department: Department,
    name: str,
    actor: User,
    days: int = CREDENTIAL_DAYS,
    rate_limit: int = 600,
) -> tuple[MachineCredential, str]:
    """A new API token for a department's system; the token is returned once, never stored."""
    _require_credential_admin(actor)
    name = name.strip()
    if not name or len(name) > 60:
        raise ExchangeInputInvalid(_("Name the system in at most 60 characters."), field="name")
    if not 1 <= days <= CREDENTIAL_DAYS:
        raise ExchangeInputInvalid(
            _("A credential lasts 1 to %(days)s days.") % {"days": CREDENTIAL_DAYS}, field="days"
        )
    if not 1 <= rate_limit <= 100_000:
        raise ExchangeInputInvalid(_("Choose a rate limit from 1 to 100000."), field="rate_limit")
    key_id, token, secret_hash = _token_new()
    credential = MachineCredential.objects.create(
        department=department,
        name=name,
        key_id=key_id,
        secret_hash=secret_hash,
        rate_limit=rate_limit,
        created_by=actor,
        expires_at=timezone.now() + dt.timedelta(days=days),
    )
    audit_record(
        action="credential.create",
        actor=actor,
        target=credential,
        after={"department": department.code, "name": name, "key_id": key_id},
    )
    return credential, token


@transaction.atomic
def credential_rotate(
    *, credential: MachineCredential, actor: User
) -> tuple[MachineCredential, str]:
    """Replace a token: the new one works at once, the old one for a day more (轮换)."""
    _require_credential_admin(actor)
    old = MachineCredential.objects.select_for_update().get(pk=credential.pk)
    if old.revoked_at is not None or old.replaced_by_id is not None:
        raise ExchangeInputInvalid(_("This credential was revoked or replaced already."))
    new, token = credential_create(
        department=old.department,
        name=old.name,
        actor=actor,
        # Rounded: created_at is stamped a moment after expires_at was computed.
        days=min(CREDENTIAL_DAYS, max(1, round((old.expires_at - old.created_at) / DAY))),
        rate_limit=old.rate_limit,
    )
    old.replaced_by = new
    old.expires_at = min(old.expires_at, timezone.now() + ROTATION_GRACE)
    old.save(update_fields=["replaced_by", "expires_at"])
    audit_record(
        action="credential.rotate",
        actor=actor,
        target=old,
        after={"replaced_by": new.key_id, "expires_at": old.expires_at},
    )
    return new, token


@transaction.atomic
def credential_revoke(*, credential: MachineCredential, actor: User) -> MachineCredential:
    _require_credential_admin(actor)
    credential = MachineCredential.objects.select_for_update().get(pk=credential.pk)
    if credential.revoked_at is None:
        credential.revoked_at = timezone.now()
        credential.save(update_fields=["revoked_at"])
        audit_record(action="credential.revoke", actor=actor, target=credential)
    return credential


def credential_authenticate(token: str) -> MachineCredential:
    """The credential a bearer token belongs to, if it is in force; records its use."""
    prefix, _sep, rest = token.partition("_")
    key_id, _sep, secret = rest.partition("_")
    if prefix != TOKEN_PREFIX or not key_id or not secret:
        raise CredentialInvalid()
    credential = (
        MachineCredential.objects.select_related("department").filter(key_id=key_id).first()
    )
    now = timezone.now()
    if (
        credential is None
        or not secrets.compare_digest(
            credential.secret_hash, hashlib.sha256(secret.encode()).hexdigest()
        )
        or credential.revoked_at is not None
        or credential.expires_at <= now
    ):
        raise CredentialInvalid()
    # One write a minute at most: the audit entry of each call records the use itself.
    if credential.last_used_at is None or now - credential.last_used_at > dt.timedelta(minutes=1):
        MachineCredential.objects.filter(pk=credential.pk).update(last_used_at=now)
        credential.last_used_at = now
    return credential
