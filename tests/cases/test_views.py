"""The application pages: each opens for its role only, refused posts change nothing, the
staff flow accept → supplement → answer → approve works through the forms, applicants see
only their own cases and staff only their department's."""

import pytest

from tests.cases.factories import make_case, make_item
from tests.licensing.factories import make_office
from tests.people.factories import login_verified, make_person, make_user
from tongban.audit.models import AuditEntry
from tongban.cases import services
from tongban.cases.models import Case, CaseEvent, Evaluation
from tongban.licensing.models import License

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
