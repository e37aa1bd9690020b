"""The entitlements API over HTTP: a resident's grants with why, their children's and their
principals' read-only, declining with a confirmation, confirming when silent verification
asks; staff's rule list, preview, run now and review; and callers who get a coded refusal
and change nothing (anonymous, the wrong role, another person's grant, another department,
bad input, a missing CSRF token)."""

import datetime as dt
from typing import Any

import pytest
from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from django.utils.crypto import get_random_string
from django_tasks_db.models import DBTaskResult

from tests.people.factories import login_verified, make_department, make_user
from tongban.audit.models import AuditEntry
from tongban.cases.models import Case, CaseEvent, Notification
from tongban.cases.selectors import case_timeline
from tongban.entitlements.models import Entitlement, EntitlementRun, Verification
from tongban.entitlements.rulebook import entitlement_rule_in_force
from tongban.entitlements.services import (
    entitlement_decline,
    entitlements_run,
    grant_cases_open_all,
)
from tongban.entitlements.verification import verifications_sweep
from tongban.people.models import Department, Person, User

from .factories import (
    ON,
    authorize,
    childcare_family,
    civil_affairs_with_grant,
    granted_item,
    population_set,
    resident,
)

pytestmark = pytest.mark.django_db
API = "/api/v1/entitlements"


class Api:
    """A browser-like API client in English: a session, CSRF checks enforced, and the token
    sent back in the X-CSRFToken header as a page's script would."""

    def __init__(self, user: User | None = None, *, verified: bool = False) -> None:
        self.client = Client(enforce_csrf_checks=True)
        self.token = get_random_string(32)
        self.client.cookies["csrftoken"] = self.token
        self.client.cookies[settings.LANGUAGE_COOKIE_NAME] = "en"
        if user is not None and verified:
            login_verified(self.client, user)
        elif user is not None:
            self.client.force_login(user)

    def get(self, path: str, **params: Any) -> Any:
        return self.client.get(API + path, params)

    def post(self, path: str, body: Any = None, *, csrf: bool = True) -> Any:
        headers = {"X-CSRFToken": self.token} if csrf else {}
        return self.client.post(
            API + path, body or {}, content_type="application/json", headers=headers
        )


def _json(value: Any) -> Any:
    """A value as the API writes it (datetimes to the millisecond, decimals as text)."""
    return None if value is None else DjangoJSONEncoder().default(value)


def _officer(code: str = "civil_affairs") -> User:
    return make_user(role="staff", department=Department.objects.get(code=code))


def _state(entitlement: Entitlement) -> tuple:
    """What a refused call must leave as it was."""
    entitlement = Entitlement.objects.get(pk=entitlement.pk)
    return (
        entitlement.status,
        entitlement.declined_at,
        entitlement.ended_at,
        CaseEvent.objects.filter(case=entitlement.case_id).count(),
        AuditEntry.objects.filter(action__startswith="entitlement.").count(),
        Notification.objects.filter(event="entitlement_end").count(),
    )


REGISTERED_AND_ALIVE = [
    {
        "id": "registered_here",
        "description": "具有本市户籍",
        "legal_reference": "《演示市高龄津贴发放办法》第三条",
        "passed": True,
        "explanation": "Recorded value 370102; expected 3701….",
    },
    {
        "id": "alive",
        "description": "人口基础信息状态正常",
        "legal_reference": "《演示市高龄津贴发放办法》第九条",
        "passed": True,
        "explanation": "The data holds a matching record.",
    },
]


def _elder_conditions(age: int) -> list[dict[str, Any]]:
    """Why 高龄津贴 was granted to someone of that age on the day checked (in English)."""
    aged = {
        "id": "aged",
        "description": "年满80周岁",
        "legal_reference": "《中华人民共和国老年人权益保障法》第三十三条",
        "passed": True,
        "explanation": f"Aged {age}; at least 80 required.",
    }
    return [aged, *REGISTERED_AND_ALIVE]


ELDER_LEGAL_BASIS = "《中华人民共和国老年人权益保障法》第三十三条；《演示市高龄津贴发放办法》"


def _grant_body(grant: Entitlement, **changed: Any) -> dict[str, Any]:
    """The grant of the `granted` fixture as /mine shows it."""
    grant = Entitlement.objects.select_related("case").get(pk=grant.pk)
    assert grant.case is not None
    assert grant.case is not None
    steps = case_timeline(grant.case)
    return {
        "id": grant.pk,
        "rule": "elder_allowance",
        "name": "高龄津贴",
        "status": grant.status,
        "amount": "100.00",
        "amount_note": "",
        "legal_reference": ELDER_LEGAL_BASIS,
        "granted_at": _json(grant.granted_at),
        "declined_at": _json(grant.declined_at),
        "review_at": _json(grant.review_at),
        "ended_at": _json(grant.ended_at),
        "case": {"id": grant.case.pk, "number": grant.case.number},
        "evaluated_on": "2026-03-01",
        "conditions": _elder_conditions(85),
        "history": [{"at": _json(s.at), "action": s.action, "note": s.note} for s in steps],
    } | changed


# --- 我的待遇 ------------------------------------------------------------------------------


def test_my_grants_say_why_with_the_case_and_its_history(granted: dict) -> None:
    grant = Entitlement.objects.get()

    response = Api(granted["elder"]).get("/mine")

    assert response.status_code == 200
    body = response.json()
    assert body == {"entitlements": [_grant_body(grant)], "children": [], "principals": []}
    assert [step["action"] for step in body["entitlements"][0]["history"]] == ["grant"]
    assert Api(granted["young"]).get("/mine").json() == {
        "entitlements": [],
        "children": [],
        "principals": [],
    }


def test_an_agent_reads_what_whoever_authorized_them_holds(granted: dict) -> None:
    elder, agent = granted["elder"], granted["young"]
    authorize(elder, agent)
    grant_cases_open_all()  # by the worker: the agent's page opens only the agent's own
    grant = Entitlement.objects.get()
    api = Api(agent)

    body = api.get("/mine").json()

    assert body["entitlements"] == []
    assert body["principals"] == [
        {
            "person": {"name": elder.person.name, "masked_id": elder.person.masked_id},
            "entitlements": [_grant_body(grant)],
        }
    ]
    # read-only: declining stays the principal's
    before = _state(grant)
    response = api.post(f"/mine/{grant.pk}/decline", {"confirm": True})
    assert response.status_code == 404 and response.json()["code"] == "entitlement_not_found"
    assert _state(grant) == before


def test_a_parent_reads_their_childs_grant_and_the_read_is_audited() -> None:
    family = childcare_family()
    father, stranger, baby = family["father"], family["stranger"], family["baby"]
    grant = Entitlement.objects.get(person=baby)

    body = Api(User.objects.get(person=father)).get("/mine").json()

    assert body["entitlements"] == [] and body["principals"] == []
    ((child, held),) = [(c["person"], c["entitlements"]) for c in body["children"]]
    assert child == {"name": baby.name, "masked_id": baby.masked_id}
    assert [(e["id"], e["rule"], e["name"], e["amount"]) for e in held] == [
        (grant.pk, "childcare_subsidy", "育儿补贴", "300.00")
    ]
    read = AuditEntry.objects.get(action="entitlement.guardian_read")
    assert read.subject_id == baby.resident_id
    assert Api(User.objects.get(person=stranger)).get("/mine").json()["children"] == []
    assert AuditEntry.objects.filter(action="entitlement.guardian_read").count() == 1


# --- declining -----------------------------------------------------------------------------


def test_declining_needs_the_confirmation(granted: dict) -> None:
    grant = Entitlement.objects.get()
    api = Api(granted["elder"])
    url = f"/mine/{grant.pk}/decline"
    before = _state(grant)

    for body in [None, {"confirm": False}]:
        refused = api.post(url, body)
        assert refused.status_code == 422
        assert refused.json()["code"] == "entitlement_decline_unconfirmed"
    shapeless = api.post(url, {"confirm": "perhaps"})
    assert shapeless.status_code == 422 and shapeless.json()["code"] == "invalid_input"
    assert shapeless.json()["errors"][0]["loc"][-1] == "confirm"
    assert _state(grant) == before

    done = api.post(url, {"confirm": True})

    assert done.status_code == 200
    grant.refresh_from_db()
    assert grant.status == "declined" and grant.declined_at is not None
    assert done.json() == _grant_body(grant)
    assert [s["action"] for s in done.json()["history"]] == ["grant", "benefit_decline"]
    assert AuditEntry.objects.filter(action="entitlement.decline").count() == 1
    again = api.post(url, {"confirm": True})
    assert again.status_code == 409 and again.json()["code"] == "entitlement_not_declinable"


def test_another_persons_grant_is_unknown(granted: dict) -> None:
    grant = Entitlement.objects.get()
    api = Api(granted["young"])
    before = _state(grant)

    for path in [f"/mine/{grant.pk}/decline", "/mine/999999/decline"]:
        response = api.post(path, {"confirm": True})
        assert response.status_code == 404
        assert response.json()["code"] == "entitlement_not_found"

    assert _state(grant) == before


# --- 静默认证 -------------------------------------------------------------------------------


def _asked_body(request: Verification, person: Person, *, own: bool) -> dict[str, Any]:
    request.refresh_from_db()
    return {
        "id": request.pk,
        "rule": "pension_continuation",
        "rule_name": "养老金继续领取",
        "period": request.period,
        "person": {"name": person.name, "masked_id": person.masked_id},
        "own": own,
        "status": request.status,
        "method": request.method,
        "asked_at": _json(request.asked_at),
        "deadline": _json(request.deadline),
        "confirmed_at": _json(request.confirmed_at),
    }


def test_a_resident_confirms_when_asked(asked: dict) -> None:
    quiet = asked["quiet"]
    request = Verification.objects.get(person=quiet.person)
    api = Api(quiet)

    listed = api.get("/verifications").json()

    assert listed == {"count": 1, "items": [_asked_body(request, quiet.person, own=True)]}
    assert request.status == "asked" and request.deadline is not None
    assert Api(asked["active"]).get("/verifications").json() == {"count": 0, "items": []}

    done = api.post(f"/verifications/{request.pk}/confirm")

    assert done.status_code == 200
    assert done.json() == _asked_body(request, quiet.person, own=True)
    assert (request.status, request.method, request.confirmed_by) == (
        "confirmed",
        "self_confirmed",
        quiet,
    )
    assert api.get("/verifications").json() == {"count": 0, "items": []}
    again = api.post(f"/verifications/{request.pk}/confirm")
    assert again.status_code == 409 and again.json()["code"] == "verification_not_pending"


def test_an_agent_sees_and_confirms_the_request_of_whoever_authorized_them(asked: dict) -> None:
    holder = asked["quiet"]
    agent = make_user(role="citizen")
    authorize(holder, agent)
    request = Verification.objects.get(person=holder.person)
    api = Api(agent)

    listed = api.get("/verifications").json()
    assert listed == {"count": 1, "items": [_asked_body(request, holder.person, own=False)]}
    done = api.post(f"/verifications/{request.pk}/confirm")

    assert done.status_code == 200 and done.json()["own"] is False
    request.refresh_from_db()
    assert (request.status, request.method, request.confirmed_by) == (
        "confirmed",
        "agent_confirmed",
        agent,
    )


def test_another_residents_request_is_unknown(asked: dict) -> None:
    request = Verification.objects.get(person=asked["quiet"].person)
    api = Api(asked["other"])

    for pk in [request.pk, 999999]:
        response = api.post(f"/verifications/{pk}/confirm")
        assert response.status_code == 404
        assert response.json()["code"] == "verification_not_found"

    request.refresh_from_db()
    assert (request.status, request.confirmed_at) == ("asked", None)
    assert not AuditEntry.objects.filter(action="verification.confirm").exists()


def test_pending_requests_come_a_page_at_a_time(asked: dict) -> None:
    holder = asked["other"]
    for principal in [asked["quiet"], asked["active"]]:
        authorize(principal, holder)
    api = Api(holder)

    first = api.get("/verifications", page_size=1).json()
    second = api.get("/verifications", page=2, page_size=1).json()

    # their own first, then the principal's (the active one was verified from data)
    assert (first["count"], second["count"]) == (2, 2)
    assert [(i["person"]["name"], i["own"]) for i in first["items"] + second["items"]] == [
        (holder.person.name, True),
        (asked["quiet"].person.name, False),
    ]


# --- who may call what ---------------------------------------------------------------------


def test_who_may_call_what(granted: dict) -> None:
    grant = Entitlement.objects.get()
    before = _state(grant)
    anonymous = Api()
    calls = [
        ("get", "/mine"),
        ("post", f"/mine/{grant.pk}/decline"),
        ("get", "/verifications"),
        ("post", "/verifications/1/confirm"),
        ("get", "/rules"),
        ("post", "/rules/elder_allowance/preview"),
        ("post", "/rules/elder_allowance/run"),
        ("get", "/review"),
        ("post", f"/review/{grant.pk}/end"),
    ]
    for method, path in calls:
        body = {"confirm": True} if "decline" in path else {"note": "x"}
        response = anonymous.get(path) if method == "get" else anonymous.post(path, body)
        assert (path, response.status_code) == (path, 401)
        assert response.json()["code"] == "not_authenticated"
    # staff and organization agents hold no benefits
    for other in [Api(_officer(), verified=True), Api(make_user(role="org_agent"))]:
        for response in [
            other.get("/mine"),
            other.post(f"/mine/{grant.pk}/decline", {"confirm": True}),
            other.get("/verifications"),
        ]:
            assert response.status_code == 403 and response.json()["code"] == "role_not_allowed"
    # residents, and staff without their one-time code, do not reach the staff endpoints
    for outsider in [Api(granted["elder"]), Api(_officer())]:
        assert outsider.get("/rules").status_code == 401
        assert outsider.post("/rules/elder_allowance/preview").status_code == 401
        assert outsider.get("/review").status_code == 401
    assert _state(grant) == before
    assert not EntitlementRun.objects.filter(dry_run=True).exists()


def test_posts_without_the_csrf_token_are_refused(in_review: Entitlement) -> None:
    before = _state(in_review)
    holder = Api(User.objects.get(person=in_review.person))
    staff = Api(_officer(), verified=True)

    responses = [
        holder.post(f"/mine/{in_review.pk}/decline", {"confirm": True}, csrf=False),
        staff.post(f"/review/{in_review.pk}/end", {"note": "人口库登记已死亡"}, csrf=False),
        staff.post("/rules/elder_allowance/preview", csrf=False),
        staff.post("/rules/elder_allowance/run", csrf=False),
    ]

    assert [r.status_code for r in responses] == [403, 403, 403, 403]
    assert _state(in_review) == before
    assert not EntitlementRun.objects.filter(dry_run=True).exists()
    assert not AuditEntry.objects.filter(action="entitlement.run_queued").exists()


# --- staff: the rules ----------------------------------------------------------------------


def test_a_run_that_stopped_part_way_has_no_finish(granted: dict) -> None:
    EntitlementRun.objects.update(finished_at=None)

    body = Api(_officer(), verified=True).get("/rules").json()

    (elder,) = [r for r in body["rules"] if r["code"] == "elder_allowance"]
    ((run),) = elder["runs"]
    assert run["finished_at"] is None and run["granted"] == 1


def test_staff_read_every_rule_with_its_schedule_and_runs(granted: dict) -> None:
    run = EntitlementRun.objects.get()
    today = timezone.localdate()

    body = Api(_officer(), verified=True).get("/rules").json()

    ((schedule),) = body["schedule"]
    assert (schedule["name"], schedule["cron"]) == ("entitlements-daily", "0 2 * * *")
    due = dt.datetime.fromisoformat(schedule["next_at"])
    assert (due.hour, due.minute) == (2, 0) and due > timezone.now()
    assert [r["code"] for r in body["rules"]] == [
        "elder_allowance",
        "longevity_allowance",
        "childcare_subsidy",
        "minimum_living_renewal",
        "pension_continuation",
    ]
    rule = entitlement_rule_in_force("elder_allowance", on=today)
    assert rule is not None
    (elder,) = [r for r in body["rules"] if r["code"] == "elder_allowance"]
    assert elder == {
        "code": "elder_allowance",
        "version": "2024-01-01",
        "name": "高龄津贴",
        "department": "civil_affairs",
        "item": rule.item,
        "legal_reference": ELDER_LEGAL_BASIS,
        "effective_from": "2024-01-01",
        "effective_until": None,
        "in_force": True,
        "amount": str(rule.amount_on(today)),
        "amount_note": "",
        "amounts": [
            {"since": "2024-01-01", "amount": "100.00"},
            {"since": "2026-07-01", "amount": "120.00"},
        ],
        "conditions": [
            {
                "id": c["id"],
                "kind": kind,
                "description": c["description"],
                "legal_reference": c["legal_reference"],
                "effective_from": None,
                "effective_until": None,
            }
            for c, kind in zip(
                _elder_conditions(85), ["age_at_least", "field_in", "row_exists"], strict=True
            )
        ],
        "held": {"granted": 1, "declined": 0, "review": 0, "ended": 0},
        "mine": True,
        "next_run_at": schedule["next_at"],
        "runs": [
            {
                "id": run.pk,
                "rule_version": "2024-01-01",
                "evaluated_on": "2026-03-01",
                "dry_run": False,
                "how": "manual",
                "actor": "test",
                "started_at": _json(run.started_at),
                "finished_at": _json(run.finished_at),
                "persons": 2,
                "eligible": 1,
                "granted": 1,
                "to_review": 0,
                "revalued": 0,
                "unchanged": 0,
                "declined": 0,
            }
        ],
        "verification": None,
    }
    (childcare,) = [r for r in body["rules"] if r["code"] == "childcare_subsidy"]
    assert (childcare["mine"], childcare["runs"], childcare["held"]["granted"]) == (False, [], 0)


def test_the_pension_department_reads_its_verification_counts(asked: dict) -> None:
    def pension(api: Api) -> dict:
        return next(
            r for r in api.get("/rules").json()["rules"] if r["code"] == "pension_continuation"
        )

    mine = pension(Api(_officer("social_insurance"), verified=True))
    assert mine["verification"] == {"verified": 1, "asked": 2, "confirmed": 0, "overdue": 0}
    assert mine["amount_note"] != "" and mine["held"]["granted"] == 3
    assert pension(Api(make_user(role="staff"), verified=True))["verification"] is None


def test_the_granting_department_previews_a_dry_run(granted: dict) -> None:
    newcomer = resident(born=dt.date(1935, 1, 1))  # newly eligible since the run
    staff = _officer()
    before = _state(Entitlement.objects.get())

    response = Api(staff, verified=True).post("/rules/elder_allowance/preview")

    assert response.status_code == 200
    run = EntitlementRun.objects.get(dry_run=True)
    assert response.json() == {
        "rule": "elder_allowance",
        "on": _json(timezone.localdate()),
        "run": {
            "id": run.pk,
            "rule_version": "2024-01-01",
            "evaluated_on": _json(timezone.localdate()),
            "dry_run": True,
            "how": "preview",
            "actor": f"user:{staff.pk}:{staff.username}",
            "started_at": _json(run.started_at),
            "finished_at": _json(run.finished_at),
            "persons": 3,
            "eligible": 2,
            "granted": 1,
            "to_review": 0,
            "revalued": run.revalued,
            "unchanged": run.unchanged,
            "declined": 0,
        },
        "newly_eligible": [{"name": newcomer.name, "masked_id": newcomer.masked_id}],
        "limit": 50,
    }
    assert run.revalued + run.unchanged == 1  # the elder's amount, as of today
    assert Entitlement.objects.count() == 1  # nothing granted by a preview
    assert _state(Entitlement.objects.get())[:4] == before[:4]


def test_other_departments_may_not_preview_or_run(granted: dict) -> None:
    other = Api(make_user(role="staff", department=make_department(code="market")), verified=True)

    for action in ["preview", "run"]:
        refused = other.post(f"/rules/elder_allowance/{action}")
        assert refused.status_code == 403
        assert refused.json()["code"] == "entitlement_rule_not_yours"
        unknown = other.post(f"/rules/nope/{action}")
        assert unknown.status_code == 404
        assert unknown.json()["code"] == "entitlement_rule_not_found"

    assert not EntitlementRun.objects.filter(dry_run=True).exists()
    assert not DBTaskResult.objects.exists()
    assert not AuditEntry.objects.filter(action="entitlement.run_queued").exists()


def test_the_granting_department_queues_a_run(
    granted: dict, django_capture_on_commit_callbacks: Any
) -> None:
    staff = _officer()
    api = Api(staff, verified=True)

    with django_capture_on_commit_callbacks(execute=True):
        response = api.post("/rules/elder_allowance/run")

    assert response.status_code == 202
    assert response.json() == {"rule": "elder_allowance", "queued": True}
    task = DBTaskResult.objects.get()
    label = f"user:{staff.pk}:{staff.username}"
    assert task.task_path == "tongban.entitlements.tasks.entitlements_run_task"
    assert task.args_kwargs == {"args": [], "kwargs": {"rule": "elder_allowance", "actor": label}}
    queued = AuditEntry.objects.get(action="entitlement.run_queued")
    assert (queued.actor, queued.after) == (label, {"rule": "elder_allowance"})
    assert EntitlementRun.objects.count() == 1  # run by the worker, not the request


# --- staff: 待复核 -------------------------------------------------------------------------


def _review_body(entitlement: Entitlement, *, age: int = 85) -> dict[str, Any]:
    entitlement = Entitlement.objects.select_related("case", "person").get(pk=entitlement.pk)
    assert entitlement.case is not None
    return {
        "id": entitlement.pk,
        "rule": "elder_allowance",
        "name": "高龄津贴",
        "status": entitlement.status,
        "person": {"name": entitlement.person.name, "masked_id": entitlement.person.masked_id},
        "amount": "100.00",
        "granted_at": _json(entitlement.granted_at),
        "review_at": _json(entitlement.review_at),
        "ended_at": _json(entitlement.ended_at),
        "case": {"id": entitlement.case.pk, "number": entitlement.case.number},
        "evaluated_on": "2026-03-01",
        "conditions": _elder_conditions(age),
        "overdue": None,
    }


def test_the_review_list_comes_a_page_at_a_time(in_review: Entitlement) -> None:
    others = [resident(born=dt.date(1930 + n, 5, 1)) for n in range(2)]
    entitlements_run(rule="elder_allowance", actor="test", on=ON)
    for person in others:
        population_set(person, alive=False)
    entitlements_run(rule="elder_allowance", actor="test", on=ON)
    flagged = list(Entitlement.objects.filter(status="review").order_by("review_at", "pk"))
    api = Api(_officer(), verified=True)

    first = api.get("/review", page_size=2).json()
    second = api.get("/review", page=2, page_size=2).json()

    assert len(flagged) == 3 and flagged[0] == in_review
    ages = [85, 95, 94]  # on the day checked, of the elder and of those born 1930 and 1931
    bodies = [_review_body(e, age=age) for e, age in zip(flagged, ages, strict=True)]
    assert first == {"count": 3, "items": bodies[:2]}
    assert second == {"count": 3, "items": bodies[2:]}
    other = Api(make_user(role="staff", department=make_department(code="market")), verified=True)
    assert other.get("/review").json() == {"count": 0, "items": []}


def _queries(api: Api, path: str) -> int:
    with CaptureQueriesContext(connection) as queries:
        assert api.get(path).status_code == 200
    return len(queries)


def test_the_review_list_reads_a_fixed_number_of_rows(in_review: Entitlement) -> None:
    api = Api(_officer(), verified=True)
    one = _queries(api, "/review")
    others = [resident(born=dt.date(1930 + n, 5, 1)) for n in range(4)]
    entitlements_run(rule="elder_allowance", actor="test", on=ON)
    for person in others:
        population_set(person, alive=False)
    entitlements_run(rule="elder_allowance", actor="test", on=ON)

    assert api.get("/review").json()["count"] == 5
    assert _queries(api, "/review") == one


def test_the_granting_department_ends_a_grant_in_review(in_review: Entitlement) -> None:
    staff = _officer()
    api = Api(staff, verified=True)
    url = f"/review/{in_review.pk}/end"
    before = _state(in_review)

    for note in ["", "   "]:
        refused = api.post(url, {"note": note})
        assert refused.status_code == 422
        assert refused.json()["code"] == "entitlement_review_note_invalid"
    too_long = api.post(url, {"note": "长" * 1001})
    assert too_long.status_code == 422 and too_long.json()["code"] == "invalid_input"
    missing = api.post(url, {})
    assert missing.status_code == 422 and missing.json()["errors"][0]["loc"][-1] == "note"
    assert _state(in_review) == before

    done = api.post(url, {"note": "人口库登记已死亡"})

    assert done.status_code == 200
    in_review.refresh_from_db()
    assert in_review.status == "ended" and in_review.ended_at is not None
    assert done.json() == _review_body(in_review)
    (step,) = CaseEvent.objects.filter(case=in_review.case_id, action="benefit_end")
    assert step.note == "人口库登记已死亡" and step.actor.startswith(f"user:{staff.pk}:")
    assert AuditEntry.objects.filter(action="entitlement.end").count() == 1
    assert Notification.objects.filter(event="entitlement_end").count() == 1
    again = api.post(url, {"note": "再次"})
    assert again.status_code == 404 and again.json()["code"] == "entitlement_not_found"


def test_a_review_may_keep_the_grant(in_review: Entitlement) -> None:
    done = Api(_officer(), verified=True).post(f"/review/{in_review.pk}/keep", {"note": "数据有误"})

    assert done.status_code == 200
    in_review.refresh_from_db()
    assert in_review.status == "granted"
    assert done.json() == _review_body(in_review)
    latest = CaseEvent.objects.filter(case=in_review.case_id).latest("pk")
    assert (latest.action, latest.note) == ("benefit_keep", "数据有误")


def test_other_departments_may_not_decide_a_review(in_review: Entitlement) -> None:
    before = _state(in_review)
    other = Api(make_user(role="staff", department=make_department(code="market")), verified=True)

    for decision in ["keep", "end"]:
        response = other.post(f"/review/{in_review.pk}/{decision}", {"note": "x"})
        assert response.status_code == 404
        assert response.json()["code"] == "entitlement_not_found"

    assert _state(in_review) == before


def test_the_review_says_the_holder_did_not_confirm(asked: dict) -> None:
    late = timezone.localdate() + dt.timedelta(days=31)
    verifications_sweep(actor="test", on=late)
    quiet = Verification.objects.get(person=asked["quiet"].person)

    body = Api(_officer("social_insurance"), verified=True).get("/review").json()

    entry = next(e for e in body["items"] if e["person"]["name"] == asked["quiet"].person.name)
    assert body["count"] == 2
    assert entry["overdue"] == {
        "asked_at": _json(quiet.asked_at),
        "deadline": _json(quiet.deadline),
    }
    assert (entry["rule"], entry["status"]) == ("pension_continuation", "review")


def test_a_declined_grant_is_not_in_review(granted: dict) -> None:
    grant = Entitlement.objects.get()
    entitlement_decline(entitlement=grant, actor=granted["elder"])

    assert Api(_officer(), verified=True).get("/review").json() == {"count": 0, "items": []}


# --- the API description ---------------------------------------------------------------------


def test_openapi_documents_the_endpoints_and_their_refusals(client: Client) -> None:
    paths = client.get("/api/v1/openapi.json").json()["paths"]

    def codes(path: str, method: str) -> set[str]:
        return set(paths[API + path][method]["responses"])

    assert codes("/mine", "get") == {"200", "401", "403", "422"}
    assert codes("/mine/{entitlement_id}/decline", "post") == {
        "200",
        "401",
        "403",
        "404",
        "409",
        "422",
    }
    assert codes("/verifications/{verification_id}/confirm", "post") >= {"200", "404", "409"}
    assert codes("/rules/{code}/run", "post") == {"202", "401", "403", "404", "422"}
    assert codes("/review/{entitlement_id}/end", "post") >= {"200", "404", "409", "422"}
    for path in ["/verifications", "/rules", "/rules/{code}/preview", "/review"]:
        assert API + path in paths
    review = paths[API + "/review"]["get"]
    assert {p["name"] for p in review["parameters"]} == {"page", "page_size"}


def test_the_cases_api_refuses_to_apply_for_a_benefit_already_granted(granted: dict) -> None:
    elder = granted["elder"]
    grant = Entitlement.objects.get(person=elder.person)
    code = granted_item(grant.rule_code).code
    api = Api(elder)
    cases = Case.objects.count()

    form = api.client.get(f"/api/v1/cases/apply/item/{code}")
    sent = api.client.post(
        "/api/v1/cases/submissions",
        {"item": code},
        content_type="application/json",
        headers={"X-CSRFToken": api.token, "Idempotency-Key": "key-0001-abcd"},
    )

    for response in (form, sent):
        assert response.status_code == 409
        assert response.json()["code"] == "entitlement_already_held"
        assert response.json()["details"] == {"entitlement": grant.pk}
    assert Case.objects.count() == cases


def test_a_rule_not_yet_in_force_is_previewed_for_its_first_day_and_not_run(
    december: dt.date,
) -> None:
    civil_affairs_with_grant()
    ninety = resident(born=dt.date(1936, 6, 1))
    staff = Api(_officer(), verified=True)

    (rule,) = [r for r in staff.get("/rules").json()["rules"] if r["code"] == "longevity_allowance"]
    previewed = staff.post("/rules/longevity_allowance/preview")
    queued = staff.post("/rules/longevity_allowance/run")

    assert (rule["in_force"], rule["amount"], rule["next_run_at"]) == (False, "200.00", None)
    assert [c["id"] for c in rule["conditions"]] == ["aged", "registered_here", "alive"]
    assert previewed.status_code == 200
    body = previewed.json()
    assert body["on"] == "2027-01-01" and body["run"]["evaluated_on"] == "2027-01-01"
    assert body["newly_eligible"] == [{"name": ninety.name, "masked_id": ninety.masked_id}]
    assert queued.status_code == 404 and queued.json()["code"] == "entitlement_rule_not_found"
    assert not Entitlement.objects.exists()
    assert not DBTaskResult.objects.exists()
