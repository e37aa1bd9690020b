"""Reads of applications: who sees which case, the staff queue sorted by due date with its
working-day warnings, a bundle tracked as one, and what each user may do next."""

import datetime as dt
import uuid

import pytest
from django.utils import translation

from tests.cases.apply_factories import upload_pdf
from tests.cases.factories import make_case, make_item
from tests.licensing.factories import SURFACE, make_office
from tests.people.factories import make_department, make_person, make_user
from tongban.cases import selectors, services
from tongban.cases.models import Case, Upload
from tongban.core.errors import TongbanError

pytestmark = pytest.mark.django_db
State = Case.State


@pytest.fixture
def office():
    return make_office()


@pytest.fixture
def item(office):
    return make_item(office)


def code_of(call) -> tuple[str, int]:
    with pytest.raises(TongbanError) as caught:
        call()
    return caught.value.code, caught.value.status


def test_a_citizen_sees_only_their_own_cases(item):
    # Given two citizens with a case each
    alice, bob = make_user(role="citizen"), make_user(role="citizen")
    mine = make_case(item, applicant=alice.person, actor=alice)
    theirs = make_case(item, applicant=bob.person, actor=bob)

    # Then each lists only their own, and the other's is "not found"
    assert list(selectors.cases_for_applicant(alice)) == [mine]
    assert selectors.case_for_applicant(alice, mine.pk) == mine
    assert code_of(lambda: selectors.case_for_applicant(alice, theirs.pk)) == (
        "case_not_found",
        404,
    )
    assert code_of(lambda: selectors.case_for_applicant(alice, "x")) == ("case_not_found", 404)


def test_window_staff_see_what_they_applied_for_and_the_person_sees_it_too(office, item):
    # Given window staff applying for an elderly person (帮办代办)
    elder = make_person(name="王奶奶", birth=dt.date(1940, 3, 1))
    helper = make_user(role="staff", department=make_department(code="center", name="政务中心"))
    case = make_case(item, applicant=elder, actor=helper)
    elder_account = make_user(role="citizen", person=elder)

    # Then both the helper and the person read it; another citizen does not
    assert list(selectors.cases_for_applicant(helper)) == [case]
    assert list(selectors.cases_for_applicant(elder_account)) == [case]
    assert list(selectors.cases_for_applicant(make_user(role="citizen"))) == []


def test_an_agent_sees_their_organizations_cases(office):
    item = make_item(office, code="ORG-ITEM", audience="organization", result_license_type=None)
    agent = make_user(role="org_agent")
    colleague = make_user(role="org_agent", organization=agent.organization)
    case = make_case(item, applicant=agent.organization, actor=agent)
    other = make_user(role="org_agent")

    assert list(selectors.cases_for_applicant(colleague)) == [case]
    assert list(selectors.cases_for_applicant(other)) == []
    assert code_of(lambda: selectors.cases_for_applicant(make_user(role="data_admin"))) == (
        "permission_denied",
        403,
    )


def test_staff_see_only_their_departments_cases(office, item):
    case = make_case(item)
    other = make_user(role="staff", department=make_department(code="tax", name="税务局"))

    assert [e.case for e in selectors.queue_for_staff(office.staff)] == [case]
    assert selectors.case_for_staff(office.staff, case.pk) == case
    assert list(selectors.queue_for_staff(other)) == []
    assert code_of(lambda: selectors.case_for_staff(other, case.pk)) == ("case_not_found", 404)
    citizen = make_user(role="citizen")
    assert code_of(lambda: selectors.queue_for_staff(citizen)) == ("permission_denied", 403)
    assert code_of(lambda: selectors.case_for_staff(citizen, case.pk)) == (
        "permission_denied",
        403,
    )


def test_the_queue_is_sorted_by_due_date_with_working_day_warnings(office, item):
    # Given cases submitted on Wednesday 2026-09-30 with 1, 3 and 10 working days
    submitted = dt.datetime(2026, 9, 30, 10, 0, tzinfo=dt.timezone(dt.timedelta(hours=8)))
    later = make_case(make_item(office, code="TEN", days=10), now=submitted)
    soon = make_case(make_item(office, code="ONE", days=1), now=submitted)
    middle = make_case(make_item(office, code="THREE", days=3), now=submitted)
    closed = make_case(item, now=submitted)
    services.case_not_accept(case=closed, actor=office.staff, note="不属于本部门受理范围")
    assert (soon.due_at, middle.due_at, later.due_at) == (
        dt.date(2026, 10, 8),
        dt.date(2026, 10, 10),  # the adjusted working Saturday
        dt.date(2026, 10, 20),
    )

    # When staff look at the queue on Friday Oct 9
    queue = selectors.queue_for_staff(office.staff, today=dt.date(2026, 10, 9))

    # Then the open ones come soonest first, the first overdue and the second near due
    assert [e.case for e in queue] == [soon, middle, later]
    flags = [(e.deadline.overdue, e.deadline.near_due, e.deadline.working_days_left) for e in queue]
    assert flags == [(True, False, -1), (False, True, 1), (False, False, 8)]
    assert (len(queue), [e.case for e in queue[1:]], queue[-1].case) == (3, [middle, later], later)
    assert [e.case for e in selectors.queue_for_staff(office.staff, "not_accepted")] == [closed]
    assert code_of(lambda: selectors.queue_for_staff(office.staff, "lost")) == (
        "state_invalid",
        422,
    )


def test_a_paused_case_is_never_flagged(office, item):
    submitted = dt.datetime(2026, 9, 28, 10, 0, tzinfo=dt.timezone(dt.timedelta(hours=8)))
    case = make_case(item, now=submitted)
    services.case_accept(case=case, actor=office.staff)
    case = services.case_supplement_request(case=case, actor=office.staff, note="请补充")
    deadline = selectors.case_deadline(case, today=dt.date(2026, 12, 1))
    assert (deadline.paused, deadline.overdue, deadline.near_due) == (True, False, False)


def test_a_bundle_is_complete_when_every_case_is(office):
    first, second = make_item(office, code="A"), make_item(office, code="B")
    user = make_user(role="citizen")
    submission, _created = services.submission_create(
        items=[first, second],
        applicant=user.person,
        actor=user,
        idempotency_key=uuid.uuid4().hex,
        forms={"A": {"surface": dict(SURFACE)}, "B": {"surface": dict(SURFACE)}},
    )
    assert selectors.submission_for_applicant(user, submission.pk) == submission
    stranger = make_user(role="citizen")
    assert code_of(lambda: selectors.submission_for_applicant(stranger, submission.pk)) == (
        "case_not_found",
        404,
    )
    for case in submission.cases.all():
        for step in (services.case_accept, services.case_review):
            step(case=case, actor=office.staff)
        services.case_decide(case=case, actor=office.staff, approve=True, reasons="")
        progress = selectors.submission_progress(submission)
        assert not progress.is_complete
        services.case_complete(case=case, actor=office.staff)
    progress = selectors.submission_progress(submission)
    assert (progress.total, progress.completed, progress.is_complete) == (2, 2, True)


def test_actions_follow_the_state_and_the_user(office, item):
    user = make_user(role="citizen")
    case = make_case(item, applicant=user.person, actor=user)
    assert selectors.case_actions(case, office.staff) == {"accept", "not_accept"}
    assert selectors.case_actions(case, user) == {"withdraw"}
    assert selectors.case_actions(case, make_user(role="citizen")) == frozenset()
    case = services.case_accept(case=case, actor=office.staff)
    case = services.case_supplement_request(case=case, actor=office.staff, note="请补充")
    assert selectors.case_actions(case, user) == {"supplement_answer", "withdraw"}
    case = services.case_withdraw(case=case, actor=user)
    assert selectors.case_actions(case, user) == {"evaluate"}
    services.evaluation_create(case=case, actor=user, level=4)
    case = Case.objects.get(pk=case.pk)
    assert selectors.case_actions(case, user) == frozenset()
    assert [e.action for e in selectors.case_timeline(case)] == [
        "submit",
        "accept",
        "supplement_request",
        "withdraw",
        "evaluate",
    ]


def test_uploads_open_for_their_uploader_the_applicant_and_the_departments_staff(
    office, item, settings, tmp_path
):
    settings.UPLOAD_DIR = tmp_path
    user = make_user(role="citizen")
    upload = upload_pdf(user, "residence_permit")
    other_staff = make_user(role="staff", department=make_department(code="tax", name="税务局"))
    assert selectors.upload_for_user(user, upload.pk) == upload
    assert code_of(lambda: selectors.upload_for_user(office.staff, upload.pk)) == (
        "upload_not_found",
        404,
    )
    case = make_case(item, applicant=user.person, actor=user)
    Upload.objects.filter(pk=upload.pk).update(submission=case.submission)
    assert selectors.upload_for_user(office.staff, upload.pk) == upload
    for stranger in (other_staff, make_user(role="citizen")):
        assert code_of(lambda s=stranger: selectors.upload_for_user(s, upload.pk)) == (
            "upload_not_found",
            404,
        )
    assert code_of(lambda: selectors.upload_for_user(user, "1 or 1")) == ("upload_not_found", 404)


def test_a_rule_report_is_explained_in_the_active_language(item):
    case = make_case(item)
    assert selectors.case_rule_report(case) is None
    case.rule_report = {
        "rule": "ITEM-1@2024-01-01",
        "name": "居住证签注秒批",
        "legal_reference": "《居住证暂行条例》第十三条",
        "evaluated_on": "2026-12-01",
        "passed": False,
        "outcome": "to_staff",
        "conditions": [
            {
                "id": "adult",
                "kind": "age_at_least",
                "description": "年满18周岁",
                "legal_reference": "《居住证暂行条例》第九条",
                "passed": False,
                "reason": "below_minimum",
                "observed": {"dataset": "population", "rows": 1, "age": 15, "years": 18},
            }
        ],
    }
    with translation.override("en"):
        view = selectors.case_rule_report(case)
    assert (view.passed, view.approved, view.result_problem) == (False, False, "")
    assert view.conditions == [
        selectors.ConditionView(
            id="adult",
            description="年满18周岁",
            legal_reference="《居住证暂行条例》第九条",
            passed=False,
            explanation="Aged 15; at least 18 required.",
        )
    ]
