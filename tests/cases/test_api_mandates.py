"""The cases API for applying for someone: a resident grants, lists and withdraws mandates
(委托代办); the agent applies for the principal under one (the case is the principal's and
the submission records the mandate); window staff find the person by ID number and name
and apply for them with the paper authorization (窗口帮办). A mandate withdrawn, for other
items or someone else's, a wrong name and a missing CSRF token are refused with a code and
change nothing."""

import datetime as dt
import uuid

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone

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
from tests.cases.test_api import API, Api, _queries
from tests.licensing.factories import issue_residence_permit
from tests.people.factories import make_department, make_person, make_user
from tongban.audit.models import AuditEntry
from tongban.cases import mandates, services
from tongban.cases.models import Case, Mandate, Submission, Upload
from tongban.licensing.models import Consent
from tongban.people.models import User

pytestmark = pytest.mark.django_db


@pytest.fixture
def city():
    return make_city()


@pytest.fixture
def item(city):
    grant_reads(city.health, city)
    return make_health_item(city)


@pytest.fixture
def elder(city) -> User:
    """王奶奶, holding a residence permit, with rows in both datasets."""
    person = make_person(name="王奶奶", birth=dt.date(1944, 3, 8), sex="F")
    issue_residence_permit(city.police, holder=person)
    give_rows(city, person)
    return make_user(role="citizen", person=person)


@pytest.fixture
def son() -> User:
    return make_user(role="citizen", person=make_person(name="王小明"))


@pytest.fixture
def clerk() -> User:
    return make_user(role="staff", department=make_department(code="center", name="政务中心"))


def later(days: int) -> str:
    return (timezone.localdate() + dt.timedelta(days=days)).isoformat()


def grant_body(agent: User, **changes) -> dict:
    assert agent.person is not None
    return {
        "agent_resident_id": agent.person.resident_id,
        "agent_name": agent.person.name,
        "all_items": True,
        "valid_until": later(90),
    } | changes


def granted(principal: User, agent: User, **changes) -> dict:
    response = Api(principal).post("/mandates", grant_body(agent, **changes))
    assert response.status_code == 201, response.json()
    return response.json()


def counts() -> tuple[int, int, int, int, int]:
    return (
        Mandate.objects.count(),
        Mandate.objects.filter(status="withdrawn").count(),
        Submission.objects.count(),
        Case.objects.count(),
        Consent.objects.count(),
    )


def person_of(user: User) -> dict:
    assert user.person is not None
    return {"resident_id": user.person.resident_id, "name": user.person.name}


def window_upload(api: Api, key: str):
    file = SimpleUploadedFile(f"{key}.pdf", PDF, content_type="application/pdf")
    return api.client.post(
        API + "/window/uploads",
        {"material_key": key, "file": file},
        headers={"X-CSRFToken": api.token},
    )


# --- the principal --------------------------------------------------------------------------


def test_a_resident_grants_lists_and_withdraws_a_mandate(elder, son, item):
    principal = Api(elder)

    response = principal.post(
        "/mandates",
        grant_body(son, all_items=False, items=[item.code], may_consent=True),
    )

    assert response.status_code == 201
    body = response.json()
    mandate = Mandate.objects.get()
    assert body["id"] == mandate.pk
    assert (body["principal"]["name"], body["agent"]["name"]) == ("王奶奶", "王小明")
    assert body["agent"]["masked_id"] == son.person.masked_id
    assert (body["all_items"], body["items"]) == (False, [{"code": item.code, "name": "生育登记"}])
    assert (body["may_consent"], body["status"], body["state"]) == (True, "active", "in_force")
    assert (body["valid_from"], body["valid_until"], body["paper_reference"]) == (
        later(0),
        later(90),
        "",
    )
    assert AuditEntry.objects.filter(action="mandate.grant").count() == 1

    listed = principal.get("/mandates").json()
    assert (listed["count"], [m["id"] for m in listed["items"]]) == (1, [mandate.pk])
    held = Api(son).get("/mandates/held").json()
    assert [m["id"] for m in held["items"]] == [mandate.pk]
    assert Api(son).get("/mandates").json()["count"] == 0

    withdrawn = principal.post(f"/mandates/{mandate.pk}/withdraw")
    assert withdrawn.status_code == 200
    assert (withdrawn.json()["status"], withdrawn.json()["state"]) == ("withdrawn", "withdrawn")
    assert withdrawn.json()["withdrawn_at"] is not None
    assert Api(son).get("/mandates/held").json()["count"] == 0
    assert principal.get("/mandates").json()["items"][0]["state"] == "withdrawn"

    again = principal.post(f"/mandates/{mandate.pk}/withdraw")
    assert (again.status_code, again.json()["code"]) == (409, "mandate_withdrawn")


@pytest.mark.parametrize(
    "changes",
    [{"agent_name": "王小红"}, {"agent_resident_id": "unknown"}],
    ids=["wrong name", "unknown number"],
)
def test_an_agent_named_wrongly_is_refused_alike(elder, son, changes):
    if changes.get("agent_resident_id") == "unknown":
        stranger = make_person(name="李四")
        changes = {"agent_resident_id": stranger.resident_id}
        stranger.delete()  # a valid number no one holds
    before = counts()

    response = Api(elder).post("/mandates", grant_body(son, **changes))

    assert response.status_code == 422
    body = response.json()
    assert (body["code"], body["details"]) == ("person_unmatched", {"field": "agent_resident_id"})
    assert counts() == before


def test_a_mandate_asked_wrongly_is_refused_with_its_code(elder, son, item):
    api = Api(elder)
    cases = [
        (grant_body(elder), "mandate_to_self"),
        (grant_body(son, all_items=False), "mandate_input_invalid"),
        (grant_body(son, all_items=False, items=["NO-SUCH"]), "mandate_input_invalid"),
        (grant_body(son, valid_until=later(400)), "mandate_input_invalid"),
        (grant_body(son, valid_from=later(-1)), "mandate_input_invalid"),
        ({"agent_name": "王小明"}, "invalid_input"),
    ]
    for body, code in cases:
        response = api.post("/mandates", body)
        assert (response.status_code, response.json()["code"]) == (422, code), body
    assert counts() == (0, 0, 0, 0, 0)


def test_only_residents_give_and_hold_mandates(city, son, clerk):
    agent_account = make_user(role="org_agent")
    for response in [
        Api(agent_account).get("/mandates"),
        Api(agent_account).post("/mandates", grant_body(son)),
        Api(clerk, verified=True).get("/mandates/held"),
    ]:
        assert (response.status_code, response.json()["code"]) == (403, "role_not_allowed")
    anonymous = Api()
    assert anonymous.get("/mandates").status_code == 401
    assert Mandate.objects.count() == 0


# --- the agent ------------------------------------------------------------------------------


def test_an_agent_applies_for_the_principal_under_the_mandate(elder, son, item):
    mandate = granted(elder, son, may_consent=True)
    agent = Api(son)

    form = agent.get(f"/apply/item/{item.code}", for_mandate=mandate["id"])

    assert form.status_code == 200
    prepared = form.json()
    assert prepared["for_person"] == {"name": "王奶奶", "masked_id": elder.person.masked_id}
    assert prepared["mandate"] == mandate["id"]
    # the principal's license and data, and their consent asked of the agent
    sources = {m["key"]: m["source"] for m in prepared["materials"]}
    assert sources == {
        "residence_permit": "license",
        "household": "dataset",
        "marriage_certificate": "dataset",
    }
    assert [c["dataset"]["code"] for c in prepared["consents"]] == ["marriage"]

    response = agent.post(
        "/submissions",
        {"item": item.code, "for_mandate": mandate["id"], "consents": ["marriage"]},
        key="agent-key-0001",
    )

    assert response.status_code == 201
    sent = response.json()
    assert sent["mandate"] == mandate["id"]
    [summary] = sent["cases"]
    assert summary["on_behalf"] == {
        "applicant_name": "王奶奶",
        "mandate": mandate["id"],
        "agent_name": "王小明",
        "at_window": False,
    }
    submission = Submission.objects.get()
    case = submission.cases.get()
    assert (submission.applicant_person, submission.submitted_by, submission.mandate_id) == (
        elder.person,
        son,
        mandate["id"],
    )
    assert case.applicant_person == elder.person
    assert Consent.objects.get().holder_person_id == elder.person.pk

    mine = Api(elder).get("/mine").json()
    assert [(c["id"], c["on_behalf"]["agent_name"]) for c in mine["items"]] == [(case.pk, "王小明")]
    assert Api(elder).get(f"/mine/{case.pk}").status_code == 200
    assert [c["id"] for c in agent.get("/mine").json()["items"]] == [case.pk]

    retry = agent.post(
        "/submissions",
        {"item": item.code, "for_mandate": mandate["id"], "consents": ["marriage"]},
        key="agent-key-0001",
    )
    assert (retry.status_code, retry.json()["id"]) == (200, submission.pk)
    assert Submission.objects.count() == 1


def test_an_agent_without_the_consent_flag_uploads_what_needs_consent(elder, son, item):
    mandate = granted(elder, son)
    agent = Api(son)
    prepared = agent.get(f"/apply/item/{item.code}", for_mandate=mandate["id"]).json()
    assert prepared["consents"] == []
    upload = agent.upload("marriage_certificate", "marriage.pdf", PDF).json()

    refused = agent.post(
        "/submissions",
        {"item": item.code, "for_mandate": mandate["id"], "consents": ["marriage"]},
        key="agent-key-0002",
    )
    assert (refused.status_code, refused.json()["code"]) == (422, "consent_unexpected")

    response = agent.post(
        "/submissions",
        {
            "item": item.code,
            "for_mandate": mandate["id"],
            "uploads": {"marriage_certificate": [upload["id"]]},
        },
        key="agent-key-0003",
    )
    assert response.status_code == 201
    assert Consent.objects.count() == 0
    assert Upload.objects.get().case == Case.objects.get()


@pytest.mark.parametrize("how", ["withdrawn", "other items", "expired"])
def test_a_mandate_not_in_force_for_the_item_is_refused_and_nothing_written(
    city, elder, son, item, how
):
    other = make_health_item(city, code="HEALTH-2")
    mandate = granted(
        elder, son, **({"all_items": False, "items": [other.code]} if how == "other items" else {})
    )
    if how == "withdrawn":
        Api(elder).post(f"/mandates/{mandate['id']}/withdraw")
    elif how == "expired":
        Mandate.objects.filter(pk=mandate["id"]).update(
            valid_from=timezone.localdate() - dt.timedelta(days=30),
            valid_until=timezone.localdate() - dt.timedelta(days=1),
        )
    upload = upload_pdf(son, "marriage_certificate")
    agent = Api(son)
    before = counts()

    form = agent.get(f"/apply/item/{item.code}", for_mandate=mandate["id"])
    response = agent.post(
        "/submissions",
        {
            "item": item.code,
            "for_mandate": mandate["id"],
            "uploads": {"marriage_certificate": [upload.pk]},
        },
        key="agent-key-0004",
    )

    for refused in (form, response):
        assert (refused.status_code, refused.json()["code"]) == (403, "mandate_not_in_force")
    assert counts() == before
    upload.refresh_from_db()
    assert upload.submission_id is None
    assert not AuditEntry.objects.filter(action="submission.on_behalf").exists()


def test_an_agent_applies_for_a_bundle_only_under_a_mandate_covering_every_item(
    city, elder, son, item
):
    second = make_health_item(city, code="HEALTH-2")
    bundle = make_bundle([item, second])
    partial = granted(elder, son, all_items=False, items=[item.code], may_consent=True)
    agent = Api(son)

    refused = agent.get(f"/apply/bundle/{bundle.code}", for_mandate=partial["id"])
    assert (refused.status_code, refused.json()["code"]) == (403, "mandate_not_in_force")

    covering = granted(elder, son, all_items=False, items=[item.code, second.code])
    # naming either mandate names the principal; the one covering every item is used
    form = agent.get(f"/apply/bundle/{bundle.code}", for_mandate=partial["id"])
    assert (form.status_code, form.json()["mandate"]) == (200, covering["id"])
    response = agent.post(
        "/submissions",
        {
            "bundle": bundle.code,
            "for_mandate": partial["id"],
            "uploads": {"marriage_certificate": [upload_pdf(son, "marriage_certificate").pk]},
        },
        key="agent-bundle-0001",
    )
    assert (response.status_code, response.json()["mandate"]) == (201, covering["id"])
    assert {c.applicant_person_id for c in Case.objects.all()} == {elder.person.pk}
    assert Case.objects.count() == 2


def test_no_one_else_withdraws_or_uses_a_mandate(elder, son, item):
    mandate = granted(elder, son)
    stranger = Api(make_user(role="citizen", person=make_person(name="张三")))
    before = counts()

    withdrawal = stranger.post(f"/mandates/{mandate['id']}/withdraw")
    as_agent = Api(son).post(f"/mandates/{mandate['id']}/withdraw")  # the agent does not either
    form = stranger.get(f"/apply/item/{item.code}", for_mandate=mandate["id"])
    submitted = stranger.post(
        "/submissions", {"item": item.code, "for_mandate": mandate["id"]}, key="stranger-0001"
    )
    # nor the principal, for their own mandate
    own = Api(elder).get(f"/apply/item/{item.code}", for_mandate=mandate["id"])

    for refused in (withdrawal, as_agent, form, submitted, own):
        assert (refused.status_code, refused.json()["code"]) == (404, "mandate_not_found")
    assert counts() == before
    assert Mandate.objects.get().status == "active"
    missing = stranger.post("/mandates/999999/withdraw")
    assert missing.json() == withdrawal.json()
    # an organization's agent account applies for its organization only
    org_agent = Api(make_user(role="org_agent", person=son.person))
    as_org = org_agent.get(f"/apply/item/{item.code}", for_mandate=mandate["id"])
    assert (as_org.status_code, as_org.json()["code"]) == (403, "role_not_allowed")


# --- window staff ---------------------------------------------------------------------------


def test_window_staff_find_the_person_audited_with_their_mandates(elder, son, clerk):
    mandate = granted(elder, son)
    window = Api(clerk, verified=True)

    response = window.post("/window/person", person_of(elder))

    assert response.status_code == 200
    body = response.json()
    assert (body["name"], body["masked_id"]) == ("王奶奶", elder.person.masked_id)
    assert [m["id"] for m in body["mandates"]] == [mandate["id"]]
    entry = AuditEntry.objects.get(action="window.person_find")
    assert (entry.actor, entry.subject_id) == (
        f"user:{clerk.pk}:{clerk.username}",
        elder.person.resident_id,
    )


def test_a_wrong_name_is_refused_as_an_unknown_number(elder, clerk):
    window = Api(clerk, verified=True)
    stranger = make_person(name="李四")
    unknown = stranger.resident_id
    stranger.delete()

    wrong_name = window.post(
        "/window/person", {"resident_id": elder.person.resident_id, "name": "王奶"}
    )
    unknown_number = window.post("/window/person", {"resident_id": unknown, "name": "王奶奶"})

    assert wrong_name.status_code == unknown_number.status_code == 422
    assert wrong_name.json() == unknown_number.json()
    assert wrong_name.json()["code"] == "person_unmatched"
    assert not AuditEntry.objects.filter(action="window.person_find").exists()


def test_window_staff_record_and_withdraw_a_paper_mandate(elder, son, clerk):
    window = Api(clerk, verified=True)

    recorded = window.post(
        "/window/mandates",
        grant_body(son, person=person_of(elder), paper_reference="授权委托书 2026-0042"),
    )

    assert recorded.status_code == 201
    body = recorded.json()
    assert (body["principal"]["name"], body["agent"]["name"], body["paper_reference"]) == (
        "王奶奶",
        "王小明",
        "授权委托书 2026-0042",
    )
    assert Mandate.objects.get().created_by == clerk
    assert [m["id"] for m in Api(son).get("/mandates/held").json()["items"]] == [body["id"]]
    blank = window.post(
        "/window/mandates", grant_body(son, person=person_of(elder), paper_reference=" ")
    )
    assert (blank.status_code, blank.json()["details"]) == (422, {"field": "paper_reference"})

    # another person's mandate is not withdrawn in this person's name
    other = Api(son).post("/mandates", grant_body(elder)).json()
    crossed = window.post(f"/window/mandates/{other['id']}/withdraw", {"person": person_of(elder)})
    assert (crossed.status_code, crossed.json()["code"]) == (404, "mandate_not_found")
    assert Mandate.objects.filter(status="withdrawn").count() == 0

    withdrawn = window.post(f"/window/mandates/{body['id']}/withdraw", {"person": person_of(elder)})
    assert (withdrawn.status_code, withdrawn.json()["state"]) == (200, "withdrawn")
    assert Api(son).get("/mandates/held").json()["count"] == 0


def test_window_staff_apply_for_the_person_with_the_paper_reference(elder, clerk, item):
    window = Api(clerk, verified=True)

    form = window.post(f"/window/apply/item/{item.code}", {"person": person_of(elder)})

    assert form.status_code == 200
    prepared = form.json()
    assert (prepared["for_person"]["name"], prepared["mandate"]) == ("王奶奶", None)
    # staff cannot consent for her: what needs consent is uploaded
    assert {m["key"]: m["source"] for m in prepared["materials"]}["marriage_certificate"] == (
        "upload"
    )
    assert prepared["consents"] == []
    upload = window_upload(window, "marriage_certificate")
    assert upload.status_code == 201

    response = window.post(
        "/window/submissions",
        {
            "person": person_of(elder),
            "on_behalf_note": "授权委托书 2026-0042",
            "item": item.code,
            "uploads": {"marriage_certificate": [upload.json()["id"]]},
        },
        key="window-key-0001",
    )

    assert response.status_code == 201
    [summary] = response.json()["cases"]
    assert summary["on_behalf"] == {
        "applicant_name": "王奶奶",
        "mandate": None,
        "agent_name": None,
        "at_window": True,
    }
    submission = Submission.objects.get()
    assert (submission.applicant_person, submission.submitted_by, submission.on_behalf_note) == (
        elder.person,
        clerk,
        "授权委托书 2026-0042",
    )
    assert window.get(f"/window/submissions/{submission.pk}").json()["id"] == submission.pk
    mine = Api(elder).get("/mine").json()["items"]
    assert [(c["submission"], c["on_behalf"]["at_window"]) for c in mine] == [(submission.pk, True)]
    assert AuditEntry.objects.filter(action="window.person_find").count() == 2


def test_window_submissions_are_refused_without_the_person_or_the_authorization(elder, clerk, item):
    window = Api(clerk, verified=True)
    upload = window_upload(window, "marriage_certificate").json()
    body = {
        "person": person_of(elder) | {"name": "王奶"},
        "on_behalf_note": "授权委托书 2026-0042",
        "item": item.code,
        "uploads": {"marriage_certificate": [upload["id"]]},
    }

    wrong_name = window.post("/window/submissions", body, key="window-key-0002")
    no_note = window.post(
        "/window/submissions",
        body | {"person": person_of(elder), "on_behalf_note": "  "},
        key="window-key-0003",
    )

    assert (wrong_name.status_code, wrong_name.json()["code"]) == (422, "person_unmatched")
    assert (no_note.status_code, no_note.json()["code"], no_note.json()["details"]) == (
        422,
        "case_input_invalid",
        {"field": "on_behalf_note"},
    )
    assert counts()[2:] == (0, 0, 0)
    assert Upload.objects.get().submission_id is None


def test_window_endpoints_are_for_verified_staff_and_staff_do_not_apply_for_themselves(
    city, elder, clerk, item
):
    for api in (Api(elder), Api(clerk), Api()):  # a citizen, staff without the code, anonymous
        response = api.post("/window/person", person_of(elder))
        assert (response.status_code, response.json()["code"]) == (401, "not_authenticated")
    staff = Api(clerk, verified=True)
    for response in (
        staff.get(f"/apply/item/{item.code}"),
        staff.post("/submissions", {"item": item.code}, key="staff-key-0001"),
    ):
        assert (response.status_code, response.json()["code"]) == (403, "role_not_allowed")
    assert not AuditEntry.objects.filter(action="window.person_find").exists()


def test_posts_without_the_csrf_token_change_nothing(elder, son, clerk, item):
    mandate = mandates.mandate_grant(
        actor=elder,
        agent_resident_id=son.person.resident_id,
        agent_name=son.person.name,
        all_items=True,
        valid_until=timezone.localdate() + dt.timedelta(days=30),
    )
    window = Api(clerk, verified=True)
    before = counts()

    responses = [
        Api(elder).post("/mandates", grant_body(son), csrf=False),
        Api(elder).post(f"/mandates/{mandate.pk}/withdraw", csrf=False),
        Api(son).post(
            "/submissions",
            {"item": item.code, "for_mandate": mandate.pk},
            key="csrf-key-0001",
            csrf=False,
        ),
        window.post("/window/person", person_of(elder), csrf=False),
        window.post(
            "/window/mandates",
            grant_body(son, person=person_of(elder), paper_reference="授权委托书 1"),
            csrf=False,
        ),
        window.post(
            f"/window/mandates/{mandate.pk}/withdraw", {"person": person_of(elder)}, csrf=False
        ),
        window.post(
            "/window/submissions",
            {"person": person_of(elder), "on_behalf_note": "授权委托书 1", "item": item.code},
            key="csrf-key-0002",
            csrf=False,
        ),
    ]

    assert [r.status_code for r in responses] == [403] * len(responses)
    assert counts() == before
    assert not AuditEntry.objects.filter(action="window.person_find").exists()


# --- lists cost the same whatever their length, and the API description ---------------------


def test_lists_of_mandates_and_of_cases_applied_for_someone_read_a_fixed_number_of_rows(
    city, elder, son, item
):
    staff = Api(make_user(role="staff", department=city.health), verified=True)
    principal, agent = Api(elder), Api(son)

    def more() -> None:
        granted(elder, son, all_items=False, items=[item.code])
        services.application_submit(
            item=item,
            actor=son,
            on_behalf=elder.person,
            uploads={"marriage_certificate": [upload_pdf(son, "marriage_certificate").pk]},
            idempotency_key=uuid.uuid4().hex,
        )

    more()
    paths = [
        (principal, "/mandates"),
        (agent, "/mandates/held"),
        (principal, "/mine"),
        (agent, "/mine"),
        (staff, "/queue"),
    ]
    few = [_queries(api, path) for api, path in paths]
    for _ in range(3):
        more()

    assert [_queries(api, path) for api, path in paths] == few
    assert principal.get("/mandates").json()["count"] == 4
    assert {c["on_behalf"]["agent_name"] for c in principal.get("/mine").json()["items"]} == {
        "王小明"
    }


def test_openapi_documents_the_mandate_and_window_endpoints(client):
    paths = client.get("/api/v1/openapi.json").json()["paths"]

    def responses(path: str, method: str = "post") -> set[str]:
        return set(paths[API + path][method]["responses"])

    assert responses("/mandates") >= {"201", "401", "403", "422"}
    assert responses("/mandates/{mandate_id}/withdraw") >= {"200", "403", "404", "409", "422"}
    assert responses("/mandates/held", "get") >= {"200", "401", "403"}
    assert responses("/window/person") >= {"200", "401", "403", "422"}
    assert responses("/window/mandates/{mandate_id}/withdraw") >= {"200", "404", "409", "422"}
    assert responses("/window/submissions") >= {"200", "201", "401", "403", "404", "422"}
    assert responses("/window/uploads") >= {"201", "413", "415"}
    prepare = paths[API + "/apply/item/{code}"]["get"]
    assert "for_mandate" in {p["name"] for p in prepare["parameters"]}
    assert "for_mandate" in str(client.get("/api/v1/openapi.json").json()["components"])
