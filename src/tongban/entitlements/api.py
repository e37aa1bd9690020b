"""The entitlements API (免申即享): residents read what they hold without applying — with
why, and what their children and the people who authorized them hold — decline a grant,
and confirm when silent verification (静默认证) asks; TOTP-verified staff read the rules
with their schedule and runs, preview or queue a run of their department's rule, and keep
or end their department's grants in review. Handlers call the same services and selectors
the pages use: another person's grant, and another department's in review, look exactly
like a missing one (entitlement_not_found)."""

from typing import Any, cast

from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _
from ninja import Router
from ninja.pagination import PageNumberPagination, paginate
from ninja.responses import Status

from tongban.cases.api import CHANGE_REFUSALS, LOOKUP_REFUSALS, REFUSALS, ApplicantAuth, Mapped
from tongban.core.errors import PermissionDeniedError
from tongban.people.api_auth import verified_staff
from tongban.people.models import Person, User

from . import selectors, services, verification
from .errors import EntitlementDeclineUnconfirmed
from .models import Entitlement, EntitlementRun, Verification
from .schemas import (
    DeclineIn,
    EntitlementOut,
    MyEntitlementsOut,
    PreviewOut,
    ReviewEntryOut,
    ReviewIn,
    RulesOut,
    RunQueuedOut,
    VerificationOut,
)
from .tasks import SCHEDULER_ACTOR, entitlements_run_enqueue

router = Router(tags=["entitlements"])


class HolderAuth(ApplicantAuth):
    """A resident's session with their person linked: residents hold benefits. Other
    accounts are refused with a 403 (role_not_allowed), so a refused POST changes nothing."""

    roles = (User.Role.CITIZEN,)
    refusal = _("Only residents hold benefits.")

    def authenticate(self, request: HttpRequest, key: str | None) -> Any:
        user = super().authenticate(request, key)
        if user is not None and user.person_id is None:
            raise PermissionDeniedError(self.refusal, code="role_not_allowed")
        return user


holder = HolderAuth()


def _user(request: HttpRequest) -> User:
    """The user an auth let in."""
    return cast(User, request.auth)  # type: ignore[attr-defined]


def _case_ref(entitlement: Entitlement) -> dict[str, Any] | None:
    case = entitlement.case_or_none()
    return {"id": case.pk, "number": case.number} if case is not None else None


# --- 我的待遇 ------------------------------------------------------------------------------


def _entitlement_out(entitlement: Entitlement) -> dict[str, Any]:
    explained = selectors.entitlement_explained(entitlement)
    facts = explained["facts"]
    return {
        "id": entitlement.pk,
        "rule": entitlement.rule_code,
        "name": facts.get("name") or entitlement.rule_code,
        "status": entitlement.status,
        "amount": entitlement.amount,
        "amount_note": explained["amount_note"],
        "legal_reference": facts.get("legal_reference") or "",
        "granted_at": entitlement.granted_at,
        "declined_at": entitlement.declined_at,
        "review_at": entitlement.review_at,
        "ended_at": entitlement.ended_at,
        "case": _case_ref(entitlement),
        "evaluated_on": str(facts.get("evaluated_on") or ""),
        "conditions": explained["conditions"],
        "history": explained["history"],
    }


def _held_by(found: list[tuple[Person, list[Entitlement]]]) -> list[dict[str, Any]]:
    return [
        {"person": person, "entitlements": [_entitlement_out(e) for e in held]}
        for person, held in found
    ]


@router.get("/mine", response={200: MyEntitlementsOut} | REFUSALS, auth=holder)
def my_entitlements(request: HttpRequest) -> Any:
    """我的待遇: what you receive without applying, newest first, each with its case, the
    facts that made you eligible and its history; and, read-only, what the children you
    are named guardian of hold (each child shown is an audited read of their data) and what
    the people who authorized you for every service hold."""
    user = _user(request)
    person = cast(Person, user.person)
    services.grant_cases_open_of(user)
    return {
        "entitlements": [_entitlement_out(e) for e in selectors.entitlements_of(person)],
        "children": _held_by(selectors.entitlements_of_children(user)),
        "principals": _held_by(selectors.entitlements_of_principals(person)),
    }


@router.post(
    "/mine/{entitlement_id}/decline",
    response={200: EntitlementOut} | CHANGE_REFUSALS,
    auth=holder,
)
def decline(request: HttpRequest, entitlement_id: int, body: DeclineIn) -> Any:
    """放弃: decline one of your grants, with `{"confirm": true}`; later runs do not grant it
    again. Refused, with nothing changed: entitlement_not_found (404, not yours),
    entitlement_decline_unconfirmed (422), entitlement_not_declinable (409, no longer in
    effect)."""
    user = _user(request)
    entitlement = selectors.entitlement_of_user(user, entitlement_id)
    if not body.confirm:
        raise EntitlementDeclineUnconfirmed()
    services.entitlement_decline(entitlement=entitlement, actor=user)
    return _entitlement_out(selectors.entitlement_of_user(user, entitlement_id))


# --- 静默认证: requests to confirm ------------------------------------------------------------


def _verification_out(asked: Verification, person: Person) -> dict[str, Any]:
    rule = selectors.entitlement_rule(asked.rule_code)
    return {
        "id": asked.pk,
        "rule": asked.rule_code,
        "rule_name": rule.name if rule else asked.rule_code,
        "period": asked.period,
        "person": person if asked.person_id == person.pk else asked.person,
        "own": asked.person_id == person.pk,
        "status": asked.status,
        "method": asked.method,
        "asked_at": asked.asked_at,
        "deadline": asked.deadline,
        "confirmed_at": asked.confirmed_at,
    }


@router.get("/verifications", response={200: list[VerificationOut]} | REFUSALS, auth=holder)
@paginate(PageNumberPagination, page_size=20, max_page_size=100)
def verifications_pending(request: HttpRequest) -> Any:
    """The requests to confirm still open: yours, then those of the people who authorized
    you for every service, each by the soonest deadline."""
    person = cast(Person, _user(request).person)
    pending = verification.verifications_pending(person)
    pending += verification.verifications_pending_of_principals(person)
    return Mapped(pending, lambda asked: _verification_out(asked, person))


@router.post(
    "/verifications/{verification_id}/confirm",
    response={200: VerificationOut} | CHANGE_REFUSALS,
    auth=holder,
)
def verification_confirm(request: HttpRequest, verification_id: int) -> Any:
    """确认本人继续领取: confirm, for yourself or for whoever authorized you for every
    service. Another's request is verification_not_found (404); one confirmed or closed
    already verification_not_pending (409)."""
    user = _user(request)
    asked = verification.verification_of_user(user, verification_id)
    done = verification.verification_confirm(verification=asked, actor=user)
    return _verification_out(done, cast(Person, user.person))


# --- staff: the rules and their runs ----------------------------------------------------------


def _run_out(run: EntitlementRun) -> dict[str, Any]:
    how = "preview" if run.dry_run else "scheduled" if run.actor == SCHEDULER_ACTOR else "manual"
    return {
        "id": run.pk,
        "rule_version": run.rule_version,
        "evaluated_on": run.evaluated_on,
        "dry_run": run.dry_run,
        "how": how,
        "actor": run.actor,
        "started_at": run.started_at,
        "finished_at": run.finished_at,
    } | run.counts


def _rule_out(row: dict[str, Any], next_at: Any) -> dict[str, Any]:
    rule = row["rule"]
    return {
        "code": rule.code,
        "version": rule.version,
        "name": rule.name,
        "department": rule.department,
        "item": rule.item,
        "legal_reference": rule.legal_reference,
        "effective_from": rule.effective_from,
        "effective_until": rule.effective_until,
        "in_force": row["in_force"],
        "amount": row["amount"],
        "amount_note": rule.amount_note,
        "amounts": [{"since": since, "amount": amount} for since, amount in rule.amounts],
        "conditions": [
            {
                "id": c.id,
                "kind": c.kind,
                "description": c.description,
                "legal_reference": c.legal_reference,
                "effective_from": c.effective_from,
                "effective_until": c.effective_until,
            }
            for c in row["conditions"]
        ],
        "held": row["counts"],
        "mine": row["mine"],
        "next_run_at": next_at if row["in_force"] else None,
        "runs": [_run_out(run) for run in row["runs"]],
        "verification": row["verification"],
    }


@router.get("/rules", response={200: RulesOut} | REFUSALS, auth=verified_staff)
def rules(request: HttpRequest) -> Any:
    """Every rule: its legal basis, dated amounts, today's conditions, how many hold it, its
    next scheduled run and recent runs with their counts (silent verification counts for
    the granting department)."""
    overview = selectors.entitlement_rules_overview(_user(request))
    schedule = overview["schedule"]
    next_at = min((s["next_at"] for s in schedule), default=None)
    return {
        "schedule": [
            {"name": s["entry"].name, "cron": s["entry"].cron, "next_at": s["next_at"]}
            for s in schedule
        ],
        "rules": [_rule_out(row, next_at) for row in overview["rules"]],
    }


@router.post(
    "/rules/{code}/preview", response={200: PreviewOut} | LOOKUP_REFUSALS, auth=verified_staff
)
def preview(request: HttpRequest, code: str) -> Any:
    """A dry run of your department's rule (audited: it reads the population): its counts
    and the first people it would newly grant, by masked ID number; nothing is granted.
    A rule not yet in force is evaluated for the day it takes effect (`on`). Another
    department's rule is entitlement_rule_not_yours (403), with nothing run; an unknown
    one, or one that has ended, entitlement_rule_not_found (404)."""
    user = _user(request)
    rule = selectors.entitlement_rule_of_department(user, code)
    done = services.entitlements_preview(rule=rule, actor=user)
    return {
        "rule": rule.code,
        "on": done.on,
        "run": _run_out(done.run),
        "newly_eligible": done.people,
        "limit": done.limit,
    }


@router.post(
    "/rules/{code}/run", response={202: RunQueuedOut} | LOOKUP_REFUSALS, auth=verified_staff
)
def run_now(request: HttpRequest, code: str) -> Any:
    """立即运行: queue a run of your department's rule in force (202); a worker performs it
    and it appears among the rule's runs when done. Refused as a preview is, and a rule
    not in force today (entitlement_rule_not_found, 404)."""
    user = _user(request)
    rule = selectors.entitlement_rule_of_department(user, code)
    entitlements_run_enqueue(rule=rule, actor=user)
    return Status(202, {"rule": rule.code, "queued": True})


# --- staff: 待复核 -------------------------------------------------------------------------


def _review_out(entitlement: Entitlement) -> dict[str, Any]:
    report = selectors.entitlement_report(entitlement)
    facts = report["facts"]
    return {
        "id": entitlement.pk,
        "rule": entitlement.rule_code,
        "name": facts.get("name") or entitlement.rule_code,
        "status": entitlement.status,
        "person": entitlement.person,
        "amount": entitlement.amount,
        "granted_at": entitlement.granted_at,
        "review_at": entitlement.review_at,
        "ended_at": entitlement.ended_at,
        "case": _case_ref(entitlement),
        "evaluated_on": str(facts.get("evaluated_on") or ""),
        "conditions": report["conditions"],
        "overdue": selectors.entitlement_overdue(entitlement),
    }


@router.get("/review", response={200: list[ReviewEntryOut]} | REFUSALS, auth=verified_staff)
@paginate(PageNumberPagination, page_size=20, max_page_size=100)
def review(request: HttpRequest) -> Any:
    """待复核: your department's grants whose holders no longer meet the conditions, the
    oldest flag first. Nothing is stopped before you decide."""
    return Mapped(selectors.entitlements_to_review(_user(request)), _review_out)


def _review_decide(request: HttpRequest, entitlement_id: int, body: ReviewIn, keep: bool) -> Any:
    user = _user(request)
    services.entitlement_review_decide(
        entitlement=selectors.entitlement_to_review(user, entitlement_id),
        actor=user,
        keep=keep,
        note=body.note,
    )
    return _review_out(selectors.entitlement_of_department(user, entitlement_id))


@router.post(
    "/review/{entitlement_id}/keep",
    response={200: ReviewEntryOut} | CHANGE_REFUSALS,
    auth=verified_staff,
)
def review_keep(request: HttpRequest, entitlement_id: int, body: ReviewIn) -> Any:
    """Keep a grant in review (the data was wrong or late), with the reason. Another
    department's, or one decided already, is entitlement_not_found (404); a blank or too
    long reason entitlement_review_note_invalid (422)."""
    return _review_decide(request, entitlement_id, body, keep=True)


@router.post(
    "/review/{entitlement_id}/end",
    response={200: ReviewEntryOut} | CHANGE_REFUSALS,
    auth=verified_staff,
)
def review_end(request: HttpRequest, entitlement_id: int, body: ReviewIn) -> Any:
    """End a grant in review, with the reason the holder is told in-app; refused as keeping
    is."""
    return _review_decide(request, entitlement_id, body, keep=False)
