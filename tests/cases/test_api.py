"""The cases API over HTTP: an applicant's journey from the form to the rating, instant
approval, uploads, a staff member's journey through the queue, and attackers who get a
coded refusal and change nothing (someone else's case, another department's, an illegal
step, a missing idempotency key, a missing CSRF token)."""

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils.crypto import get_random_string

from tests.cases.apply_factories import (
    PDF,
    give_rows,
    grant_reads,
    make_bundle,
    make_city,
    make_health_item,
    upload_dir,  # noqa: F401  (autouse fixture)
    upload_pdf,
)
from tests.cases.factories import make_case, make_item
from tests.cases.test_views import INSTANT_ITEM, instant  # noqa: F401  (fixture)
from tests.licensing.factories import issue_residence_permit
from tests.people.factories import login_verified, make_person, make_user
from tongban.audit.models import AuditEntry
from tongban.cases import services
from tongban.cases.models import Case, CaseEvent, Evaluation, Notification, Submission, Upload
from tongban.licensing.models import License
from tongban.people.models import User

pytestmark = pytest.mark.django_db
State = Case.State
API = "/api/v1/cases"


class Api:
    """A browser-like API client: a session, CSRF checks enforced, and the token sent back
    in the X-CSRFToken header as a page's script would."""

    def __init__(self, user: User | None = None, *, verified: bool = False) -> None:
        self.client = Client(enforce_csrf_checks=True)
        self.token = get_random_string(32)
        self.client.cookies["csrftoken"] = self.token
        if user is not None and verified:
            login_verified(self.client, user)
        elif user is not None:
            self.client.force_login(user)

    def get(self, path: str, **params):
        return self.client.get(API + path, params)

    def post(self, path: str, body=None, *, key: str | None = None, csrf: bool = True):
        headers = {"X-CSRFToken": self.token} if csrf else {}
        if key is not None:
            headers["Idempotency-Key"] = key
        return self.client.post(
            API + path, body or {}, content_type="application/json", headers=headers
        )

    def upload(self, key: str, name: str, content: bytes):
        file = SimpleUploadedFile(name, content, content_type="application/pdf")
        return self.client.post(
            API + "/uploads",
            {"material_key": key, "file": file},
            headers={"X-CSRFToken": self.token},
        )


@pytest.fixture
def city():
    return make_city()


@pytest.fixture
def health_item(city):
    item = make_health_item(city)
    grant_reads(city.health, city)
    return item


def _holder(city) -> User:
    """A citizen holding a residence permit, with rows in both datasets."""
    user = make_user(role="citizen", person=make_person(name="王小明"))
    issue_residence_permit(city.police, holder=user.person)
    give_rows(city, user.person)
    return user


def _submit(api: Api, item, key: str = "key-0001-abcd", **body):
    return api.post("/submissions", {"item": item.code, **body}, key=key)


def _snapshot(case: Case) -> tuple:
    case = Case.objects.get(pk=case.pk)
    return (
        case.state,
        case.due_at,
        case.decision,
        CaseEvent.objects.filter(case=case).count(),
        AuditEntry.objects.filter(action__startswith="case.").count(),
        Evaluation.objects.count(),
        License.objects.count(),
    )


# --- the applicant's journey ----------------------------------------------------------------


def test_applicant_prepares_submits_retries_reads_and_withdraws(city, health_item):
    user = _holder(city)
    api = Api(user)

    form = api.get(f"/apply/item/{health_item.code}")
    assert form.status_code == 200
    body = form.json()
    sources = {m["key"]: (m["source"], m["needs_consent"]) for m in body["materials"]}
    assert sources == {
        "residence_permit": ("license", False),
        "household": ("dataset", False),
        "marriage_certificate": ("dataset", True),
    }
    permit = next(m for m in body["materials"] if m["key"] == "residence_permit")
    assert permit["license"]["identifier"] == License.objects.get().identifier
    assert [c["dataset"]["code"] for c in body["consents"]] == ["marriage"]
    assert body["instant"] is False and body["items"][0]["department"] == city.health.code

    first = _submit(api, health_item, consents=["marriage"])
    assert first.status_code == 201
    sent = first.json()
    assert sent["created"] is True and sent["bundle"] is None
    [summary] = sent["cases"]
    assert (summary["state"], summary["item"], summary["result_license"]) == (
        "submitted",
        health_item.code,
        None,
    )

    retry = _submit(api, health_item, consents=["marriage"])
    assert retry.status_code == 200
    assert retry.json()["created"] is False
    assert retry.json()["id"] == sent["id"] and retry.json()["cases"] == sent["cases"]
    assert (Submission.objects.count(), Case.objects.count()) == (1, 1)

    mine = api.get("/mine").json()
    assert mine["count"] == 1 and mine["items"][0]["number"] == summary["number"]
    assert mine["items"][0]["deadline"]["overdue"] is False

    detail = api.get(f"/mine/{summary['id']}").json()
    materials = {m["key"]: m for m in detail["materials"]}
    assert materials["residence_permit"]["license"] == permit["license"]["identifier"]
    assert materials["marriage_certificate"]["source"] == "dataset"
    assert materials["marriage_certificate"]["rows"][0]["spouse_name"] == "李四"
    assert [(e["action"], e["by"], e["actor"]) for e in detail["timeline"]] == [
        ("submit", "applicant", None)
    ]
    assert detail["actions"] == ["withdraw"] and detail["rule_report"] is None

    withdrawn = api.post(f"/mine/{summary['id']}/withdraw", {"note": "不需要了"})
    assert withdrawn.status_code == 200
    assert withdrawn.json()["state"] == "withdrawn" and withdrawn.json()["actions"] == ["evaluate"]

    rated = api.post(f"/mine/{summary['id']}/evaluation", {"level": 4, "comment": "方便"})
    assert rated.status_code == 201 and rated.json()["level"] == 4
    again = api.post(f"/mine/{summary['id']}/evaluation", {"level": 5})
    assert again.status_code == 409 and again.json()["code"] == "case_transition_invalid"
    assert Evaluation.objects.get().level == 4


def test_a_bundle_is_one_submission_with_a_case_per_department(city, health_item):
    other = make_health_item(city, code="EDU-1", department=city.education)
    grant_reads(city.education, city)
    bundle = make_bundle([health_item, other])
    api = Api(_holder(city))

    form = api.get(f"/apply/bundle/{bundle.code}").json()
    assert form["bundle"] == bundle.code and len(form["items"]) == 2
    assert len(form["consents"]) == 1
    assert {d["code"] for d in form["consents"][0]["departments"]} == {"health", "education"}

    response = api.post(
        "/submissions", {"bundle": bundle.code, "consents": ["marriage"]}, key="bundle-key-1"
    )
    assert response.status_code == 201
    sent = response.json()
    assert sent["bundle"] == bundle.code and (sent["completed"], sent["total"]) == (0, 2)
    assert {c["department"] for c in sent["cases"]} == {"health", "education"}
    progress = api.get(f"/submissions/{sent['id']}").json()
    assert progress["cases"] == sent["cases"] and progress["is_complete"] is False


def test_instant_approval_comes_back_completed_with_its_license(city, instant):  # noqa: F811
    user = _holder(city)
    api = Api(user)
    form = api.get(f"/apply/item/{INSTANT_ITEM}").json()
    assert form["instant"] is True and form["items"][0]["instant"] is True

    response = _submit(api, instant)

    assert response.status_code == 201
    [summary] = response.json()["cases"]
    case = Case.objects.get()
    assert summary["state"] == "completed" and summary["decision"] == "approved"
    assert summary["result_license"] == case.result_license.identifier
    detail = api.get(f"/mine/{case.pk}").json()
    assert detail["rule_report"]["approved"] is True
    assert all(c["passed"] for c in detail["rule_report"]["conditions"])
    assert {e["by"] for e in detail["timeline"][1:]} == {"rules"}


def test_an_uploaded_file_is_used_for_a_material(city, health_item):
    api = Api(_holder(city))
    response = api.upload("marriage_certificate", "marriage.pdf", PDF)
    assert response.status_code == 201
    upload = response.json()
    assert (upload["content_type"], upload["size"]) == ("application/pdf", len(PDF))

    sent = _submit(api, health_item, uploads={"marriage_certificate": [upload["id"]]})

    assert sent.status_code == 201
    case = Case.objects.get()
    entry = next(m for m in case.materials if m["key"] == "marriage_certificate")
    assert (entry["source"], entry["uploads"]) == ("upload", [upload["id"]])
    assert Upload.objects.get().submission == case.submission


def test_an_upload_of_the_wrong_type_is_refused_and_stores_nothing(city, settings):
    api = Api(_holder(city))

    response = api.upload("marriage_certificate", "marriage.pdf", b"<html>not a pdf</html>")

    assert response.status_code == 415
    assert response.json()["code"] == "upload_type_invalid"
    assert Upload.objects.count() == 0 and list(settings.UPLOAD_DIR.iterdir()) == []


def test_missing_materials_are_named_and_nothing_is_created(city, health_item):
    api = Api(_holder(city))

    response = _submit(api, health_item)  # no consent, no file for the marriage certificate

    assert response.status_code == 422
    body = response.json()
    assert body["code"] == "materials_missing"
    assert [m["key"] for m in body["details"]["materials"]] == ["marriage_certificate"]
    assert (Submission.objects.count(), Case.objects.count()) == (0, 0)


def test_notifications_are_listed_and_marked_read(
    city, health_item, django_capture_on_commit_callbacks
):
    user = _holder(city)
    api = Api(user)
    with django_capture_on_commit_callbacks(execute=True):
        _submit(api, health_item, consents=["marriage"])

    listed = api.get("/notifications").json()
    assert listed["count"] == 1
    [message] = listed["items"]
    assert message["event"] == "submit" and message["read_at"] is None
    assert message["case_number"] == Case.objects.get().number

    read = api.post(f"/notifications/{message['id']}/read")
    assert read.status_code == 200 and read.json()["read_at"] is not None
    assert api.post("/notifications/read-all").json() == {"marked": 0}
    stranger = Api(make_user(role="citizen"))
    refused = stranger.post(f"/notifications/{message['id']}/read")
    assert refused.status_code == 404 and refused.json()["code"] == "notification_not_found"
    assert Notification.objects.get().read_at is not None


# --- the staff journey ---------------------------------------------------------------------


def test_staff_work_a_case_through_the_queue(city, health_item):
    citizen = Api(_holder(city))
    case_id = _submit(citizen, health_item, consents=["marriage"]).json()["cases"][0]["id"]
    staff = Api(make_user(role="staff", department=city.health), verified=True)

    queue = staff.get("/queue").json()
    assert queue["count"] == 1
    entry = queue["items"][0]
    assert entry["id"] == case_id and entry["applicant_name"] == "王小明"
    assert set(entry["deadline"]) >= {"overdue", "near_due", "working_days_left"}
    seen = staff.get(f"/queue/{case_id}").json()
    assert seen["actions"] == ["accept", "not_accept"]
    assert seen["applicant_id"] == Case.objects.get().applicant_person.masked_id

    assert staff.post(f"/queue/{case_id}/accept").json()["state"] == "accepted"
    assert staff.post(f"/queue/{case_id}/review").json()["state"] == "in_review"
    asked = staff.post(f"/queue/{case_id}/supplement-request", {"note": "请上传结婚证照片"})
    assert asked.json()["state"] == "supplement_requested"
    assert asked.json()["deadline"]["paused"] is True
    assert staff.get("/queue", state="supplement_requested").json()["count"] == 1

    upload = citizen.upload("marriage_certificate", "marriage.pdf", PDF).json()
    answered = citizen.post(
        f"/mine/{case_id}/supplement",
        {"note": "已上传", "uploads": {"marriage_certificate": [upload["id"]]}},
    )
    assert answered.status_code == 200 and answered.json()["state"] == "in_review"
    entry = next(m for m in answered.json()["materials"] if m["key"] == "marriage_certificate")
    assert (entry["source"], entry["uploads"]) == ("upload", [upload["id"]])

    decided = staff.post(f"/queue/{case_id}/decide", {"decision": "approved"})
    assert decided.status_code == 200
    assert (decided.json()["state"], decided.json()["decision"]) == ("decided", "approved")
    done = staff.post(f"/queue/{case_id}/complete")
    assert done.json()["state"] == "completed" and done.json()["closed_at"] is not None
    timeline = citizen.get(f"/mine/{case_id}").json()["timeline"]
    assert [e["action"] for e in timeline] == [
        "submit",
        "accept",
        "review",
        "supplement_request",
        "supplement_answer",
        "decide",
        "complete",
    ]
    # the applicant sees the department act; staff see the account
    assert {e["by"] for e in timeline[1:]} == {"department", "applicant"}
    assert all(e["actor"] is None for e in timeline)
    assert staff.get("/queue").json()["count"] == 0


def test_staff_approving_give_the_license_details_the_applicant_did_not(city):
    item = make_item(city.police, code="PERMIT-NEW")
    case = make_case(item)
    case.form_data = {}
    case.save(update_fields=["form_data"])
    staff_user = city.police.staff
    services.case_accept(case=case, actor=staff_user)
    services.case_review(case=case, actor=staff_user)
    staff = Api(staff_user, verified=True)
    before = _snapshot(case)

    refused = staff.post(
        f"/queue/{case.pk}/decide", {"decision": "approved", "surface": {"address": "x"}}
    )
    assert refused.status_code == 422 and _snapshot(case) == before

    surface = {"address": "演示市历下区龙奥北路8号", "since": "2024-05-06"}
    response = staff.post(f"/queue/{case.pk}/decide", {"decision": "approved", "surface": surface})

    assert response.status_code == 200
    license = License.objects.get(case=case)
    assert response.json()["result_license"] == license.identifier
    assert license.surface["address"] == surface["address"]
    assert response.json()["form"] == {"surface": surface}


def test_a_rejection_needs_reasons(city):
    case = make_case(make_item(city.police))
    staff_user = city.police.staff
    services.case_accept(case=case, actor=staff_user)
    services.case_review(case=case, actor=staff_user)
    staff = Api(staff_user, verified=True)
    before = _snapshot(case)

    response = staff.post(f"/queue/{case.pk}/decide", {"decision": "rejected"})

    assert response.status_code == 422 and response.json()["code"] == "case_input_invalid"
    assert _snapshot(case) == before


# --- attackers -----------------------------------------------------------------------------


@pytest.fixture
def submitted(city):
    """A case of the police department, submitted by its applicant."""
    return make_case(make_item(city.police))


def test_another_citizens_case_looks_missing_and_stays_unchanged(submitted):
    stranger = Api(make_user(role="citizen"))
    before = _snapshot(submitted)

    for response in [
        stranger.get(f"/mine/{submitted.pk}"),
        stranger.post(f"/mine/{submitted.pk}/withdraw"),
        stranger.post(f"/mine/{submitted.pk}/supplement", {"note": "x"}),
        stranger.post(f"/mine/{submitted.pk}/evaluation", {"level": 1, "comment": "差"}),
        stranger.get(f"/submissions/{submitted.submission_id}"),
    ]:
        assert response.status_code == 404
        assert response.json()["code"] == "case_not_found"
    assert stranger.get("/mine").json()["count"] == 0
    assert _snapshot(submitted) == before


def test_another_departments_staff_see_nothing_and_change_nothing(city, submitted):
    other = Api(make_user(role="staff", department=city.health), verified=True)
    before = _snapshot(submitted)

    for response in [
        other.get(f"/queue/{submitted.pk}"),
        other.post(f"/queue/{submitted.pk}/accept"),
        other.post(f"/queue/{submitted.pk}/not-accept", {"note": "不符合"}),
        other.post(f"/queue/{submitted.pk}/decide", {"decision": "rejected", "reasons": "x"}),
    ]:
        assert response.status_code == 404
        assert response.json()["code"] == "case_not_found"
    assert other.get("/queue").json()["count"] == 0
    assert _snapshot(submitted) == before


def test_an_illegal_step_is_a_conflict_and_changes_nothing(city, submitted):
    staff = Api(city.police.staff, verified=True)
    before = _snapshot(submitted)

    response = staff.post(f"/queue/{submitted.pk}/complete")

    assert response.status_code == 409
    body = response.json()
    assert body["code"] == "case_transition_invalid"
    assert body["details"] == {"transition": "complete", "state": "submitted"}
    assert _snapshot(submitted) == before


def test_a_submission_without_an_idempotency_key_is_refused(city, health_item):
    api = Api(_holder(city))

    response = api.post("/submissions", {"item": health_item.code, "consents": ["marriage"]})

    assert response.status_code == 422
    assert response.json()["code"] == "invalid_input"
    assert response.json()["errors"][0]["loc"][-1] == "Idempotency-Key"
    assert (Submission.objects.count(), Case.objects.count()) == (0, 0)


def test_posts_without_the_csrf_token_are_refused(city, health_item, submitted):
    citizen = Api(_holder(city))
    response = citizen.post(
        "/submissions",
        {"item": health_item.code, "consents": ["marriage"]},
        key="csrf-key-0001",
        csrf=False,
    )
    assert response.status_code == 403
    assert Submission.objects.filter(submitted_by__role="citizen").count() == 1  # `submitted`
    staff = Api(city.police.staff, verified=True)
    before = _snapshot(submitted)
    assert staff.post(f"/queue/{submitted.pk}/accept", csrf=False).status_code == 403
    assert _snapshot(submitted) == before


def test_who_may_call_what(city, submitted):
    anonymous = Api()
    for response in [anonymous.get("/mine"), anonymous.get("/queue")]:
        assert response.status_code == 401 and response.json()["code"] == "not_authenticated"
    # staff without their one-time code are not let in to the queue
    unverified = Api(city.police.staff)
    assert unverified.get("/queue").status_code == 401
    # staff and other accounts do not apply through the applicant endpoints
    staff = Api(city.police.staff, verified=True)
    response = staff.get("/mine")
    assert response.status_code == 403 and response.json()["code"] == "role_not_allowed"
    # nor do applicants reach the staff endpoints
    citizen = Api(submitted.submitted_by)
    assert citizen.get("/queue").status_code == 401
    assert citizen.post(f"/queue/{submitted.pk}/accept").status_code == 401
    assert Case.objects.get().state == State.SUBMITTED


def test_someone_elses_upload_cannot_be_named(city, health_item):
    theirs = upload_pdf(make_user(role="citizen"), "marriage_certificate")
    api = Api(_holder(city))

    response = _submit(api, health_item, uploads={"marriage_certificate": [theirs.pk]})

    assert response.status_code == 404 and response.json()["code"] == "upload_not_found"
    assert (Submission.objects.count(), Upload.objects.get().submission) == (0, None)


def test_unknown_items_and_states_are_coded_refusals(city):
    api = Api(_holder(city))
    response = api.get("/apply/item/NO-SUCH-ITEM")
    assert response.status_code == 404 and response.json()["code"] == "item_not_found"
    staff = Api(city.police.staff, verified=True)
    assert staff.get("/queue", state="lost").status_code == 422


def test_an_item_and_a_bundle_at_once_are_refused(city, health_item):
    bundle = make_bundle([health_item])
    api = Api(_holder(city))

    response = api.post(
        "/submissions", {"item": health_item.code, "bundle": bundle.code}, key="both-key-01"
    )

    assert response.status_code == 422 and response.json()["code"] == "case_input_invalid"
    assert Submission.objects.count() == 0


def test_a_file_over_the_limit_is_refused(city, settings):
    settings.UPLOAD_MAX_BYTES = 16
    api = Api(_holder(city))

    response = api.upload("marriage_certificate", "marriage.pdf", PDF)

    assert response.status_code == 413 and response.json()["code"] == "upload_too_large"
    assert Upload.objects.count() == 0


# --- lists cost the same whatever their length ---------------------------------------------


def _queries(api: Api, path: str) -> int:
    with CaptureQueriesContext(connection) as queries:
        assert api.get(path).status_code == 200
    return len(queries)


def test_list_pages_read_a_fixed_number_of_rows(city):
    item = make_item(city.police)
    person = make_person()
    citizen = make_user(role="citizen", person=person)
    staff = Api(city.police.staff, verified=True)
    mine = Api(citizen)
    make_case(item, applicant=person, actor=citizen)
    few = (_queries(staff, "/queue"), _queries(mine, "/mine"))
    for _ in range(4):
        make_case(item, applicant=person, actor=citizen)

    assert (_queries(staff, "/queue"), _queries(mine, "/mine")) == few


# --- the API description ---------------------------------------------------------------------


def test_openapi_documents_the_endpoints_and_their_refusals(client):
    spec = client.get("/api/v1/openapi.json").json()
    paths = spec["paths"]
    submit = paths[f"{API}/submissions"]["post"]
    assert set(submit["responses"]) >= {"200", "201", "401", "403", "404", "422"}
    assert submit["parameters"][0]["name"] == "Idempotency-Key"
    assert submit["parameters"][0]["required"] is True
    assert set(paths[f"{API}/queue/{{case_id}}/decide"]["post"]["responses"]) >= {
        "200",
        "401",
        "403",
        "404",
        "409",
        "422",
    }
    assert {"413", "415"} <= set(paths[f"{API}/uploads"]["post"]["responses"])
    for path in ["/apply/item/{code}", "/mine", "/mine/{case_id}", "/queue", "/notifications"]:
        assert API + path in paths
