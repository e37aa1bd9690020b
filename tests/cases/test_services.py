"""The application workflow: every legal and illegal transition, deadlines in working days
across holidays and adjusted weekends, supplements that pause the clock, idempotent
submission, and who may do what."""

import datetime as dt
import threading
import uuid

import pytest
from django.db import connection
from django.utils import timezone

from tests.cases.factories import make_case, make_item
from tests.licensing.factories import make_office
from tests.people.factories import make_department, make_person, make_user
from tongban.audit.models import AuditEntry
from tongban.cases import services
from tongban.cases.models import Case, CaseEvent, Evaluation, Submission
from tongban.core.errors import TongbanError
from tongban.licensing.models import License

pytestmark = pytest.mark.django_db
SHANGHAI = dt.timezone(dt.timedelta(hours=8))
State = Case.State


@pytest.fixture
def office():
    return make_office()


@pytest.fixture
def item(office):
    return make_item(office)


def _run(name, case, office, applicant_user):
    staff = office.staff
    calls = {
        "accept": lambda: services.case_accept(case=case, actor=staff),
        "not_accept": lambda: services.case_not_accept(case=case, actor=staff, note="材料不全"),
        "review": lambda: services.case_review(case=case, actor=staff),
        "supplement_request": lambda: services.case_supplement_request(
            case=case, actor=staff, note="请补充租赁合同"
        ),
        "supplement_answer": lambda: services.case_supplement_answer(
            case=case, actor=applicant_user, note="已补充"
        ),
        "decide": lambda: services.case_decide(case=case, actor=staff, approve=True, reasons=""),
        "complete": lambda: services.case_complete(case=case, actor=staff),
        "withdraw": lambda: services.case_withdraw(case=case, actor=applicant_user),
    }
    return calls[name]()


# The way to each state from a fresh submission.
PATHS = {
    State.SUBMITTED: [],
    State.ACCEPTED: ["accept"],
    State.IN_REVIEW: ["accept", "review"],
    State.SUPPLEMENT_REQUESTED: ["accept", "review", "supplement_request"],
    State.DECIDED: ["accept", "review", "decide"],
    State.COMPLETED: ["accept", "review", "decide", "complete"],
    State.WITHDRAWN: ["withdraw"],
    State.NOT_ACCEPTED: ["not_accept"],
}


@pytest.mark.parametrize("state", list(PATHS))
@pytest.mark.parametrize("transition", list(services.TRANSITIONS))
def test_every_transition_from_every_state(office, item, state, transition):
    applicant = make_person()
    user = make_user(role="citizen", person=applicant)
    case = make_case(item, applicant=applicant, actor=user)
    for step in PATHS[state]:
        case = _run(step, case, office, user)
    assert case.state == state
    sources, target = services.TRANSITIONS[transition]
    events, entries = CaseEvent.objects.count(), AuditEntry.objects.count()

    if state in sources:
        case = _run(transition, case, office, user)
        assert Case.objects.get(pk=case.pk).state == target
        assert CaseEvent.objects.filter(case=case).last().action == transition
        assert AuditEntry.objects.filter(action=f"case.{transition}").exists()
    else:
        with pytest.raises(TongbanError) as caught:
            _run(transition, case, office, user)
        assert (caught.value.code, caught.value.status) == ("case_transition_invalid", 409)
        assert Case.objects.get(pk=case.pk).state == state
        assert (CaseEvent.objects.count(), AuditEntry.objects.count()) == (events, entries)


def test_deadline_skips_national_day_and_counts_the_adjusted_saturday(item):
    # 3 working days after Wed 2026-09-30: Oct 1-7 are holidays, Thu 8, Fri 9, and
    # Saturday Oct 10 is an adjusted working day.
    item.promised_limit_days = 3
    item.save()
    submitted = dt.datetime(2026, 9, 30, 10, 0, tzinfo=SHANGHAI)
    case = make_case(item, now=submitted)
    assert case.due_at == dt.date(2026, 10, 10) and not case.due_provisional


def test_a_supplement_pauses_the_clock_for_the_working_days_it_took(office, item):
    applicant = make_person()
    user = make_user(role="citizen", person=applicant)
    submitted = dt.datetime(2026, 9, 28, 10, 0, tzinfo=SHANGHAI)  # Monday
    case = make_case(item, applicant=applicant, actor=user, now=submitted)
    assert case.due_at == dt.date(2026, 10, 10)  # 29, 30, Oct 8, 9, 10
    case = services.case_accept(case=case, actor=office.staff)
    case = services.case_supplement_request(case=case, actor=office.staff, note="补充材料")
    Case.objects.filter(pk=case.pk).update(
        paused_at=dt.datetime(2026, 9, 29, 12, 0, tzinfo=SHANGHAI)
    )
    case = services.case_supplement_answer(
        case=case, actor=user, now=dt.datetime(2026, 10, 9, 12, 0, tzinfo=SHANGHAI)
    )
    # Paused for Sep 30, Oct 8 and Oct 9: three working days more, Oct 12, 13, 14.
    assert case.due_at == dt.date(2026, 10, 14)
    assert case.paused_at is None and case.state == State.IN_REVIEW


def test_approval_issues_the_result_license_to_the_applicant(office, item):
    applicant = make_person()
    case = make_case(item, applicant=applicant)
    services.case_accept(case=case, actor=office.staff)
    services.case_review(case=case, actor=office.staff)
    case = services.case_decide(case=case, actor=office.staff, approve=True, reasons="")
    license = case.result_license
    assert license is not None and license.holder_person == applicant
    assert license.license_type == office.license_type and license.status == License.Status.VALID
    entry = AuditEntry.objects.filter(action="case.decide").get()
    assert entry.after == {
        "state": "decided",
        "decision": "approved",
        "license": license.identifier,
    }


def test_rejection_needs_reasons_and_issues_nothing(office, item):
    case = make_case(item)
    services.case_accept(case=case, actor=office.staff)
    services.case_review(case=case, actor=office.staff)
    with pytest.raises(TongbanError) as caught:
        services.case_decide(case=case, actor=office.staff, approve=False, reasons=" ")
    assert caught.value.code == "case_input_invalid"
    case = services.case_decide(case=case, actor=office.staff, approve=False, reasons="不符合条件")
    assert (case.decision, case.result_license) == ("rejected", None)
    assert not License.objects.exists()


def test_staff_of_another_department_and_applicants_cannot_act(office, item):
    other = make_user(role="staff", department=make_department(code="tax", name="税务局"))
    applicant = make_person()
    user = make_user(role="citizen", person=applicant)
    stranger = make_user(role="citizen")
    case = make_case(item, applicant=applicant, actor=user)
    entries = AuditEntry.objects.count()
    for actor in (other, user):
        with pytest.raises(TongbanError) as caught:
            services.case_accept(case=case, actor=actor)
        assert caught.value.status == 403
    with pytest.raises(TongbanError):
        services.case_withdraw(case=case, actor=stranger)
    with pytest.raises(TongbanError):
        services.case_withdraw(case=case, actor=office.staff)
    assert Case.objects.get(pk=case.pk).state == State.SUBMITTED
    assert AuditEntry.objects.count() == entries


def test_a_retried_submission_returns_the_first(item):
    applicant = make_person()
    user = make_user(role="citizen", person=applicant)
    key = uuid.uuid4().hex
    first, created = services.submission_create(
        items=[item], applicant=applicant, actor=user, idempotency_key=key
    )
    again, created_again = services.submission_create(
        items=[item], applicant=applicant, actor=user, idempotency_key=key
    )
    assert (created, created_again, again.pk) == (True, False, first.pk)
    assert Case.objects.count() == 1


@pytest.mark.django_db(transaction=True)
def test_concurrent_retries_make_one_submission(item):
    if connection.vendor == "sqlite":
        pytest.skip("SQLite serializes writers; the race needs PostgreSQL")
    applicant = make_person()
    user = make_user(role="citizen", person=applicant)
    key = uuid.uuid4().hex
    results = []
    barrier = threading.Barrier(4)

    def submit():
        barrier.wait()
        try:
            results.append(
                services.submission_create(
                    items=[item], applicant=applicant, actor=user, idempotency_key=key
                )
            )
        finally:
            connection.close()

    threads = [threading.Thread(target=submit) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(results) == 4 and len({s.pk for s, _c in results}) == 1
    assert sum(created for _s, created in results) == 1
    assert (Submission.objects.count(), Case.objects.count()) == (1, 1)


def test_evaluation_once_after_closing(office, item):
    applicant = make_person()
    user = make_user(role="citizen", person=applicant)
    case = make_case(item, applicant=applicant, actor=user)
    with pytest.raises(TongbanError):
        services.evaluation_create(case=case, actor=user, level=5)
    case = services.case_withdraw(case=case, actor=user)
    with pytest.raises(TongbanError) as caught:
        services.evaluation_create(case=case, actor=user, level=1)
    assert caught.value.code == "case_input_invalid"  # a poor rating says why
    evaluation = services.evaluation_create(case=case, actor=user, level=2, comment="等待太久")
    assert (evaluation.level, evaluation.comment) == (2, "等待太久")
    with pytest.raises(TongbanError):
        services.evaluation_create(case=case, actor=user, level=5)
    assert Evaluation.objects.count() == 1


def test_submission_checks_audience_and_key(item):
    agent = make_user(role="org_agent")
    with pytest.raises(TongbanError) as caught:
        services.submission_create(
            items=[item],
            applicant=agent.organization,
            actor=agent,
            idempotency_key=uuid.uuid4().hex,
        )
    assert caught.value.code == "audience_mismatch"
    with pytest.raises(TongbanError):
        services.submission_create(
            items=[item], applicant=make_person(), actor=agent, idempotency_key="short"
        )
    assert not Submission.objects.exists()


def test_case_numbers_are_unique_and_readable(item):
    now = timezone.now()
    number = services.case_number_new(department_region="370100", now=now)
    assert number.startswith("370100" + timezone.localdate(now).strftime("%Y%m%d"))
    assert len(number) == 22
