"""The application pages: each opens for its role only, refused posts change nothing, the
staff flow accept → supplement → answer → approve works through the forms, applicants see
only their own cases and staff only their department's."""

import re

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from tests.cases.apply_factories import (
    PDF,
    add_material,
    give_rows,
    grant_reads,
    make_bundle,
    make_city,
    make_health_item,
    population_row,
    upload_dir,  # noqa: F401  (autouse fixture)
    upload_pdf,
    use_permit_renewal_rules,
)
from tests.cases.factories import make_case, make_item
from tests.exchange.factories import make_grant, put_rows
from tests.licensing.factories import issue_residence_permit, make_office
from tests.people.factories import login_verified, make_person, make_user
from tongban.audit.models import AuditEntry
from tongban.cases import services
from tongban.cases.models import Case, CaseEvent, Evaluation, Submission, Upload
from tongban.exchange.proofs import automated_grant_ensure
from tongban.licensing.models import License
from tongban.people.models import User

pytestmark = pytest.mark.django_db
State = Case.State


class World:
    def __init__(self) -> None:
        self.office = make_office()
        self.item = make_item(self.office)
        self.staff = self.office.staff
        self.person = make_person(name="李娜")
        self.citizen = make_user(role="citizen", person=self.person)
        self.case = make_case(self.item, applicant=self.person, actor=self.citizen)
        self.other_office = make_office(code="civil")
        self.other_staff = self.other_office.staff
        self.stranger = make_user(role="citizen")

    def staff_client(self, client, user=None):
        login_verified(client, user or self.staff)
        return client

    def snapshot(self) -> tuple:
        case = Case.objects.get(pk=self.case.pk)
        return (
            case.state,
            case.due_at,
            CaseEvent.objects.count(),
            AuditEntry.objects.filter(action__startswith="case.").count(),
            Evaluation.objects.count(),
            License.objects.count(),
        )


@pytest.fixture
def world() -> World:
    return World()


@pytest.fixture
def english(client):
    client.cookies["django_language"] = "en"
    return client


def _post(client, url, data=None):
    return client.post(url, data or {})


# --- who may open what ----------------------------------------------------------------


def test_applicant_pages_open_for_the_applicant(client, world):
    client.force_login(world.citizen)  # citizens log in without a one-time code
    for url in ["/cases/", f"/cases/{world.case.pk}/"]:
        response = client.get(url)
        assert response.status_code == 200, url
        assert world.case.number in response.content.decode(), url


def test_staff_pages_open_for_the_department_staff(client, world):
    world.staff_client(client)
    response = client.get("/cases/queue/")
    assert response.status_code == 200
    assert world.case.number in response.content.decode()
    response = client.get(f"/cases/queue/{world.case.pk}/")
    assert response.status_code == 200
    assert world.person.masked_id in response.content.decode()
    assert world.person.resident_id not in response.content.decode()


def test_anonymous_visitors_are_sent_to_log_in(client, world):
    for url in ["/cases/", f"/cases/{world.case.pk}/", "/cases/queue/"]:
        response = client.get(url)
        assert response.status_code == 302 and "/account/login/" in response["Location"], url


def test_staff_need_a_verified_session(client, world):
    client.force_login(world.staff)
    response = client.get("/cases/queue/")
    assert response.status_code == 302 and "/account/login/" in response["Location"]


def test_wrong_roles_are_refused(client, world):
    # The workbench asks anyone without a verified one-time code to log in as staff.
    client.force_login(world.citizen)
    for url in ["/cases/queue/", f"/cases/queue/{world.case.pk}/"]:
        assert "/account/login/" in client.get(url)["Location"], url
    login_verified(client, make_user(role="data_admin"))
    assert client.get("/cases/queue/").status_code == 403
    world.staff_client(client)
    assert client.get("/cases/").status_code == 403
    assert client.get(f"/cases/{world.case.pk}/").status_code == 403


def test_a_citizen_sees_only_their_own_cases(client, world):
    theirs = make_case(world.item)
    client.force_login(world.citizen)
    listed = client.get("/cases/").content.decode()
    assert world.case.number in listed and theirs.number not in listed
    assert client.get(f"/cases/{theirs.pk}/").status_code == 404
    client.force_login(world.stranger)
    assert world.case.number not in client.get("/cases/").content.decode()
    assert client.get(f"/cases/{world.case.pk}/").status_code == 404


def test_staff_never_see_another_departments_cases(client, world):
    world.staff_client(client, world.other_staff)
    assert world.case.number not in client.get("/cases/queue/").content.decode()
    assert client.get(f"/cases/queue/{world.case.pk}/").status_code == 404
    before = world.snapshot()
    assert _post(client, f"/cases/queue/{world.case.pk}/accept/").status_code == 404
    assert world.snapshot() == before


# --- refused posts change nothing -----------------------------------------------------


def test_refused_posts_change_nothing(client, world):
    before = world.snapshot()
    url = f"/cases/queue/{world.case.pk}/accept/"
    # anonymous, a citizen, staff without the one-time code, another department
    assert _post(client, url).status_code == 302
    client.force_login(world.citizen)
    assert _post(client, url).status_code == 302
    client.force_login(world.staff)
    assert _post(client, url).status_code == 302
    world.staff_client(client, world.other_staff)
    assert _post(client, url).status_code == 404
    # a step the state does not allow, and one that does not exist
    world.staff_client(client)
    response = _post(client, f"/cases/queue/{world.case.pk}/complete/")
    assert response.status_code == 422
    assert "case_transition_invalid" in response.content.decode()
    assert _post(client, f"/cases/queue/{world.case.pk}/explode/").status_code == 404
    # reasons are required to refuse
    assert _post(client, f"/cases/queue/{world.case.pk}/not_accept/").status_code == 422
    # the applicant's own posts by others
    client.force_login(world.stranger)
    assert _post(client, f"/cases/{world.case.pk}/withdraw/").status_code == 404
    world.staff_client(client)
    assert _post(client, f"/cases/{world.case.pk}/withdraw/").status_code == 403
    # the applicant rates only a closed case
    client.force_login(world.citizen)
    response = _post(client, f"/cases/{world.case.pk}/evaluate/", {"evaluation-level": "5"})
    assert response.status_code == 422
    assert world.snapshot() == before


# --- the flows ------------------------------------------------------------------------


def test_staff_accept_request_a_supplement_and_approve_through_the_pages(client, english, world):
    staff, citizen = world.staff, world.citizen
    url = f"/cases/queue/{world.case.pk}"
    world.staff_client(client, staff)
    assert _post(client, f"{url}/accept/").status_code == 302
    assert _post(client, f"{url}/review/").status_code == 302
    response = _post(client, f"{url}/supplement_request/", {"supplement-note": "请补充租赁合同"})
    assert response.status_code == 302
    assert Case.objects.get(pk=world.case.pk).state == State.SUPPLEMENT_REQUESTED

    # the applicant reads the request and answers it
    client.force_login(citizen)
    page = client.get(f"/cases/{world.case.pk}/").content.decode()
    assert "请补充租赁合同" in page and f'action="/cases/{world.case.pk}/supplement/"' in page
    response = _post(client, f"/cases/{world.case.pk}/supplement/", {"supplement-note": "已补充"})
    assert response.status_code == 302
    assert Case.objects.get(pk=world.case.pk).state == State.IN_REVIEW

    # staff approve: the license is issued to the applicant
    world.staff_client(client, staff)
    page = client.get(f"{url}/").content.decode()
    assert "已补充" in page and f'action="{url}/decide/"' in page
    response = _post(client, f"{url}/decide/", {"decide-decision": "approved"})
    assert response.status_code == 302
    case = Case.objects.get(pk=world.case.pk)
    assert case.state == State.DECIDED and case.decision == Case.Decision.APPROVED
    assert case.result_license.holder_person == world.person
    assert _post(client, f"{url}/complete/").status_code == 302

    # the applicant sees the license and rates the service
    client.force_login(citizen)
    page = client.get(f"/cases/{world.case.pk}/").content.decode()
    assert f'href="/wallet/{case.result_license.pk}/"' in page
    response = _post(
        client,
        f"/cases/{world.case.pk}/evaluate/",
        {"evaluation-level": "5", "evaluation-comment": "很快"},
    )
    assert response.status_code == 302
    assert Evaluation.objects.get(case=case).level == 5
    assert [e.action for e in CaseEvent.objects.filter(case=case)] == [
        "submit",
        "accept",
        "review",
        "supplement_request",
        "supplement_answer",
        "decide",
        "complete",
        "evaluate",
    ]


def test_a_rejection_needs_reasons_shown_beside_the_form(client, english, world):
    services.case_accept(case=world.case, actor=world.staff)
    services.case_review(case=world.case, actor=world.staff)
    world.staff_client(client)
    url = f"/cases/queue/{world.case.pk}/decide/"
    response = _post(client, url, {"decide-decision": "rejected"})
    assert response.status_code == 422
    assert "Give the reasons." in response.content.decode()
    assert Case.objects.get(pk=world.case.pk).state == State.IN_REVIEW
    assert _post(client, url, {"decide-decision": "rejected", "decide-reasons": "不符合条件"})
    assert Case.objects.get(pk=world.case.pk).decision == Case.Decision.REJECTED


def test_the_applicant_withdraws(client, world):
    client.force_login(world.citizen)
    response = _post(client, f"/cases/{world.case.pk}/withdraw/", {"withdraw-note": "不需要了"})
    assert response.status_code == 302
    assert Case.objects.get(pk=world.case.pk).state == State.WITHDRAWN
    page = client.get(f"/cases/{world.case.pk}/").content.decode()
    assert "不需要了" in page and "/withdraw/" not in page


def test_the_queue_sorts_by_due_date_and_filters_by_state(client, english, world):
    later = make_case(make_item(world.office, code="ITEM-2", days=20))
    services.case_accept(case=later, actor=world.staff)
    world.staff_client(client)
    page = client.get("/cases/queue/").content.decode()
    assert page.index(world.case.number) < page.index(later.number)
    page = client.get("/cases/queue/?state=accepted").content.decode()
    assert later.number in page and world.case.number not in page
    partial = client.get("/cases/queue/?state=accepted", HTTP_HX_REQUEST="true")
    assert "<html" not in partial.content.decode() and later.number in partial.content.decode()
    assert client.get("/cases/queue/?state=nonsense").status_code == 200


def test_overdue_and_near_due_cases_are_marked(client, english, world):
    Case.objects.filter(pk=world.case.pk).update(due_at="2020-01-06")
    world.staff_client(client)
    assert "Overdue" in client.get("/cases/queue/").content.decode()


# --- applying online ------------------------------------------------------------------


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


def _key(page: str) -> str:
    return re.search(r'name="idempotency_key" value="([0-9a-f]+)"', page).group(1)


def _counts() -> tuple[int, int, int]:
    return Submission.objects.count(), Case.objects.count(), Upload.objects.count()


def test_the_form_says_where_each_material_comes_from(client, english, city, health_item):
    client.force_login(_holder(city))
    response = client.get(f"/cases/apply/{health_item.code}/")
    assert response.status_code == 200
    page = response.content.decode()
    assert "From your Residence permit No." in page  # the license it is fetched from
    assert "From shared government data: Population register" in page
    # the marriage registration is conditional data: consent, asked once, or an upload
    assert page.count('name="consents"') == 1 and 'value="marriage"' in page
    assert 'name="file_marriage_certificate"' in page
    assert 'name="file_residence_permit"' not in page


def test_a_certificate_free_application_uploads_nothing(client, english, city, health_item):
    client.force_login(_holder(city))
    url = f"/cases/apply/{health_item.code}/"
    key = _key(client.get(url).content.decode())
    response = client.post(url, {"idempotency_key": key, "consents": ["marriage"]})
    case = Case.objects.get()
    assert response.status_code == 302 and response["Location"] == f"/cases/{case.pk}/"
    assert (case.materials_fetched, case.materials_uploaded) == (3, 0)
    page = client.get(response["Location"]).content.decode()
    assert case.due_at.isoformat() in page and "From a license" in page


def test_a_double_submitted_form_makes_one_submission(client, city, health_item):
    client.force_login(_holder(city))
    url = f"/cases/apply/{health_item.code}/"
    key = _key(client.get(url).content.decode())
    first = client.post(url, {"idempotency_key": key, "consents": ["marriage"]})
    again = client.post(url, {"idempotency_key": key, "consents": ["marriage"]})
    assert first.status_code == again.status_code == 302
    assert first["Location"] == again["Location"]
    assert _counts()[:2] == (1, 1)
    # a form shown again has a new key: that is a new application
    assert _key(client.get(url).content.decode()) != key


def test_a_missing_material_is_asked_for_beside_its_input(client, english, city, health_item):
    user = make_user(role="citizen", person=make_person(name="赵六"))
    give_rows(city, user.person)  # no residence permit
    client.force_login(user)
    url = f"/cases/apply/{health_item.code}/"
    page = client.get(url).content.decode()
    assert 'name="file_residence_permit"' in page
    key = _key(page)

    response = client.post(url, {"idempotency_key": key, "consents": ["marriage"]})
    assert response.status_code == 422
    assert "Upload this material" in response.content.decode()
    assert _counts() == (0, 0, 0)

    text = SimpleUploadedFile("permit.txt", b"not a pdf at all", content_type="application/pdf")
    response = client.post(
        url, {"idempotency_key": key, "consents": ["marriage"], "file_residence_permit": text}
    )
    assert response.status_code == 422
    assert "upload_type_invalid" in response.content.decode()
    assert _counts() == (0, 0, 0)

    pdf = SimpleUploadedFile("permit.pdf", PDF, content_type="application/pdf")
    response = client.post(
        url, {"idempotency_key": key, "consents": ["marriage"], "file_residence_permit": pdf}
    )
    assert response.status_code == 302
    case = Case.objects.get()
    assert (case.materials_fetched, case.materials_uploaded) == (2, 1)
    upload = Upload.objects.get()
    assert upload.submission == case.submission and upload.original_name == "permit.pdf"

    # the applicant and the department's staff download it; nobody else
    file_url = f"/cases/{case.pk}/files/{upload.pk}/"
    response = client.get(file_url)
    assert response.status_code == 200 and response.content == PDF
    assert response["X-Content-Type-Options"] == "nosniff"
    staff = make_user(role="staff", department=city.health)
    login_verified(client, staff)
    assert client.get(f"/cases/queue/{case.pk}/files/{upload.pk}/").status_code == 200
    client.force_login(make_user(role="citizen"))
    assert client.get(file_url).status_code == 404
    login_verified(client, make_user(role="staff", department=city.education))
    assert client.get(f"/cases/queue/{case.pk}/files/{upload.pk}/").status_code == 404


def test_a_file_kept_from_a_refused_attempt_is_not_asked_for_again(client, city, health_item):
    user = make_user(role="citizen", person=make_person(name="赵六"))
    give_rows(city, user.person)
    client.force_login(user)
    url = f"/cases/apply/{health_item.code}/"
    key = _key(client.get(url).content.decode())
    pdf = SimpleUploadedFile("permit.pdf", PDF, content_type="application/pdf")
    # refused: neither consent nor a file for the marriage certificate
    response = client.post(url, {"idempotency_key": key, "file_residence_permit": pdf})
    assert response.status_code == 422
    upload = Upload.objects.get()
    assert f'name="kept_residence_permit" value="{upload.pk}"' in response.content.decode()
    response = client.post(
        url,
        {
            "idempotency_key": key,
            "consents": ["marriage"],
            "kept_residence_permit": str(upload.pk),
        },
    )
    assert response.status_code == 302
    assert Upload.objects.get().submission == Case.objects.get().submission


def test_someone_elses_upload_cannot_be_kept(client, city, health_item):
    other = make_user(role="citizen")
    theirs = upload_pdf(other, "residence_permit")
    user = make_user(role="citizen", person=make_person(name="赵六"))
    give_rows(city, user.person)
    client.force_login(user)
    url = f"/cases/apply/{health_item.code}/"
    key = _key(client.get(url).content.decode())
    response = client.post(
        url,
        {"idempotency_key": key, "consents": ["marriage"], "kept_residence_permit": theirs.pk},
    )
    assert response.status_code == 422
    assert "upload_not_found" in response.content.decode()
    assert _counts()[:2] == (0, 0)


def test_a_bundle_is_one_form_and_one_page_for_its_cases(client, english, city, health_item):
    other = make_health_item(city, code="EDU-1", department=city.education)
    grant_reads(city.education, city)
    bundle = make_bundle([health_item, other])
    client.force_login(_holder(city))
    url = f"/cases/apply/bundle/{bundle.code}/"
    page = client.get(url).content.decode()
    assert page.count('name="consents"') == 1
    response = client.post(url, {"idempotency_key": _key(page), "consents": ["marriage"]})
    submission = Submission.objects.get()
    assert response["Location"] == f"/cases/submissions/{submission.pk}/"
    page = client.get(response["Location"]).content.decode()
    assert "0 of 2 completed" in page
    assert {c.department for c in submission.cases.all()} == {city.health, city.education}


def test_an_item_yielding_a_license_asks_for_its_surface(client, city):
    item = make_item(city.police, code="PERMIT-NEW")
    client.force_login(make_user(role="citizen"))
    url = f"/cases/apply/{item.code}/"
    page = client.get(url).content.decode()
    assert 'name="surface-address"' in page and 'name="surface-since"' in page
    response = client.post(url, {"idempotency_key": _key(page), "surface-address": "x"})
    assert response.status_code == 422 and _counts()[:2] == (0, 0)
    response = client.post(
        url,
        {
            "idempotency_key": _key(page),
            "surface-address": "演示市历下区龙奥北路8号",
            "surface-since": "2024-05-06",
        },
    )
    assert response.status_code == 302
    assert Case.objects.get().form_data == {
        "surface": {"address": "演示市历下区龙奥北路8号", "since": "2024-05-06"}
    }


def test_only_applicants_open_the_form(client, city, health_item):
    url = f"/cases/apply/{health_item.code}/"
    assert "/account/login/" in client.get(url)["Location"]
    login_verified(client, make_user(role="staff", department=city.health))
    assert client.get(url).status_code == 403
    assert client.post(url, {"idempotency_key": "a" * 32}).status_code == 403
    assert _counts() == (0, 0, 0)
    client.force_login(make_user(role="citizen"))
    assert client.get("/cases/apply/NO-SUCH-ITEM/").status_code == 404


def test_the_guide_pages_link_to_the_form(client, city, health_item):
    bundle = make_bundle([health_item])
    assert (
        f'href="/cases/apply/{health_item.code}/"'
        in client.get(f"/items/{health_item.code}/").content.decode()
    )
    assert (
        f'href="/cases/apply/bundle/{bundle.code}/"'
        in client.get(f"/bundles/{bundle.code}/").content.decode()
    )


def test_a_supplement_is_answered_with_a_file(client, english, city, health_item):
    user = _holder(city)
    case = services.application_submit(
        item=health_item, actor=user, consent_datasets=["marriage"], idempotency_key="k" * 16
    ).cases.get()
    staff = make_user(role="staff", department=city.health)
    services.case_accept(case=case, actor=staff)
    services.case_supplement_request(case=case, actor=staff, note="请上传结婚证原件照片")
    client.force_login(user)
    pdf = SimpleUploadedFile("marriage.pdf", PDF, content_type="application/pdf")
    response = client.post(
        f"/cases/{case.pk}/supplement/",
        {"supplement-material": "marriage_certificate", "supplement-file": pdf},
    )
    assert response.status_code == 302
    case.refresh_from_db()
    upload = Upload.objects.get()
    entry = next(m for m in case.materials if m["key"] == "marriage_certificate")
    assert (case.state, entry["source"], entry["upload"]) == (State.IN_REVIEW, "upload", upload.pk)
    login_verified(client, staff)
    page = client.get(f"/cases/queue/{case.pk}/").content.decode()
    assert f'href="/cases/queue/{case.pk}/files/{upload.pk}/"' in page
    assert client.get(f"/cases/queue/{case.pk}/files/{upload.pk}/").status_code == 200


def test_a_late_supplement_answer_stores_nothing(client, city, health_item):
    user = _holder(city)
    case = services.application_submit(
        item=health_item, actor=user, consent_datasets=["marriage"], idempotency_key="k" * 16
    ).cases.get()
    client.force_login(user)
    pdf = SimpleUploadedFile("marriage.pdf", PDF, content_type="application/pdf")
    response = client.post(
        f"/cases/{case.pk}/supplement/",
        {"supplement-material": "marriage_certificate", "supplement-file": pdf},
    )
    assert response.status_code == 422
    assert (Upload.objects.count(), Case.objects.get().state) == (0, State.SUBMITTED)


# --- instant approval (秒批) -------------------------------------------------------------


INSTANT_ITEM = "PERMIT-RENEW"


@pytest.fixture
def instant(city, settings, tmp_path):
    """A residence-permit renewal the rules approve for a holder living in the city."""
    use_permit_renewal_rules(settings, tmp_path, city.police.license_type.code, INSTANT_ITEM)
    make_grant(
        consumer=city.police.department,
        dataset=city.datasets["population"],
        fields=["division_code"],
    )
    automated_grant_ensure(
        department=city.police.department,
        license_types=[city.police.license_type],
        actor="test",
        suffix="-rules-signer",
    )
    item = make_item(city.police, code=INSTANT_ITEM, name="居住证签注")
    add_material(item, "residence_permit", license_types=[city.police.license_type])
    return item


def test_instant_approval_shows_the_decision_and_the_license_at_once(
    client, english, city, instant
):
    user = _holder(city)
    client.force_login(user)
    url = f"/cases/apply/{instant.code}/"
    page = client.get(url).content.decode()
    assert "Instant approval" in page
    assert 'name="surface-address"' not in page  # the rules build the license
    response = client.post(url, {"idempotency_key": _key(page)}, follow=True)
    case = Case.objects.get()
    assert case.state == State.COMPLETED and case.result_license is not None
    page = response.content.decode()
    assert "Approved at once by the instant-approval rules." in page
    assert f'href="/wallet/{case.result_license.pk}/"' in page
    assert "Every condition holds: approved at once." in page


def test_staff_see_why_the_rules_did_not_approve(client, english, city, instant):
    user = make_user(role="citizen", person=make_person(name="钱七"))
    issue_residence_permit(city.police, holder=user.person)
    put_rows(city.datasets["population"], population_row(user.person, division_code="110101"))
    client.force_login(user)
    url = f"/cases/apply/{instant.code}/"
    response = client.post(url, {"idempotency_key": _key(client.get(url).content.decode())})
    case = Case.objects.get()
    assert response.status_code == 302 and case.state == State.SUBMITTED
    login_verified(client, city.police.staff)
    page = client.get(f"/cases/queue/{case.pk}/").content.decode()
    assert "Not every condition holds" in page and "在本市登记居住" in page
    assert f'action="/cases/queue/{case.pk}/accept/"' in page


def test_staff_give_the_license_details_the_applicant_did_not_when_approving(
    client, english, world
):
    world.case.form_data = {}
    world.case.save(update_fields=["form_data"])
    services.case_accept(case=world.case, actor=world.staff)
    services.case_review(case=world.case, actor=world.staff)
    world.staff_client(client)
    url = f"/cases/queue/{world.case.pk}/decide/"
    before = world.snapshot()

    response = _post(client, url, {"decide-decision": "approved"})

    assert response.status_code == 422
    assert response.content.decode().count("Needed for the license an approval issues.") == 2
    assert world.snapshot() == before
    details = {
        "decide-surface__address": "演示市历下区经十路1号",
        "decide-surface__since": "2025-03-01",
    }
    assert _post(client, url, {"decide-decision": "approved"} | details).status_code == 302
    license = Case.objects.get(pk=world.case.pk).result_license
    assert license.surface == {"address": "演示市历下区经十路1号", "since": "2025-03-01"}
