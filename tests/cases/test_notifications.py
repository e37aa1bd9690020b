"""Notifications: the applicant hears of each step that concerns them, in the app and by
SMS/email through the configured backend, only once the step has committed."""

import pytest
from django.conf import settings
from django.db import transaction
from django.utils import translation
from django.utils.translation import gettext

from tests.cases.factories import make_case, make_item
from tests.licensing.factories import make_office
from tests.people.factories import make_department, make_person, make_user
from tongban.cases import notifications, selectors, services
from tongban.cases.models import Notification
from tongban.core.errors import TongbanError

pytestmark = pytest.mark.django_db


class BrokenGateway:
    def send(self, message):
        raise ConnectionError("SMS gateway down")


@pytest.fixture
def office():
    return make_office()


@pytest.fixture
def item(office):
    return make_item(office)


@pytest.fixture
def citizen():
    return make_user(role="citizen", person=make_person(phone="13812345678"))


def events(user) -> list[str]:
    return list(
        Notification.objects.filter(user=user)
        .order_by("created_at", "pk")
        .values_list("event", flat=True)
    )


def test_each_step_the_applicant_should_hear_about_is_sent_after_commit(
    office, item, citizen, django_capture_on_commit_callbacks, capsys
):
    # When a case goes through the whole workflow, committing each step
    with django_capture_on_commit_callbacks(execute=True):
        case = make_case(item, applicant=citizen.person, actor=citizen)
    for step in (
        lambda: services.case_accept(case=case, actor=office.staff),
        lambda: services.case_review(case=case, actor=office.staff),
        lambda: services.case_supplement_request(case=case, actor=office.staff, note="请补充合同"),
        lambda: services.case_supplement_answer(case=case, actor=citizen, note="已补充"),
        lambda: services.case_decide(case=case, actor=office.staff, approve=True, reasons=""),
        lambda: services.case_complete(case=case, actor=office.staff),
    ):
        with django_capture_on_commit_callbacks(execute=True):
            step()

    # Then the applicant got a message for submission, acceptance, the supplement request,
    # the decision and completion — not for review or their own answer
    assert events(citizen) == ["submit", "accept", "supplement_request", "decide", "complete"]
    supplement = Notification.objects.get(user=citizen, event="supplement_request")
    assert case.number in supplement.text and "请补充合同" in supplement.text
    assert supplement.case_id == case.pk and supplement.read_at is None
    # and each went out by SMS to the masked number
    printed = capsys.readouterr().out.splitlines()
    assert len(printed) == 5 and all(line.startswith("[SMS 138******78] ") for line in printed)
    assert selectors.notifications_unread_count(citizen) == 5


def test_nothing_is_sent_for_a_step_that_is_rolled_back(
    office, item, citizen, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        case = make_case(item, applicant=citizen.person, actor=citizen)
    with (
        django_capture_on_commit_callbacks(execute=True) as callbacks,
        pytest.raises(RuntimeError),
        transaction.atomic(),
    ):
        services.case_not_accept(case=case, actor=office.staff, note="不属于本部门")
        raise RuntimeError("something later in the same request failed")
    assert callbacks == []
    assert events(citizen) == ["submit"]


def test_nothing_is_sent_before_commit(item, citizen):
    make_case(item, applicant=citizen.person, actor=citizen)
    assert not Notification.objects.exists()


def test_the_decision_says_whether_it_was_approved(
    office, item, citizen, django_capture_on_commit_callbacks
):
    case = make_case(item, applicant=citizen.person, actor=citizen)
    services.case_accept(case=case, actor=office.staff)
    services.case_review(case=case, actor=office.staff)
    with django_capture_on_commit_callbacks(execute=True):
        services.case_decide(case=case, actor=office.staff, approve=False, reasons="不符合条件")
    case.refresh_from_db()
    text = Notification.objects.get(event="decide").text
    assert text == notifications.case_message(case, "decide", "不符合条件")
    with translation.override(settings.LANGUAGE_CODE):
        rejected = gettext("Your application %(number)s (%(item)s) was rejected: %(note)s")
    assert text == rejected % {"number": case.number, "item": item.name, "note": "不符合条件"}


def test_who_submitted_for_someone_hears_too(office, item, django_capture_on_commit_callbacks):
    elder = make_person(name="王奶奶")
    elder_account = make_user(role="citizen", person=elder)
    helper = make_user(role="staff", department=make_department(code="center", name="政务中心"))
    with django_capture_on_commit_callbacks(execute=True):
        make_case(item, applicant=elder, actor=helper)
    assert events(elder_account) == ["submit"] and events(helper) == ["submit"]


def test_a_failing_gateway_does_not_undo_the_step(
    item, citizen, settings, django_capture_on_commit_callbacks
):
    settings.NOTIFICATION_BACKEND = "tests.cases.test_notifications.BrokenGateway"
    with django_capture_on_commit_callbacks(execute=True):
        case = make_case(item, applicant=citizen.person, actor=citizen)
    assert events(citizen) == ["submit"] and case.pk


def test_messages_are_marked_read_by_their_owner_only(
    item, citizen, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        make_case(item, applicant=citizen.person, actor=citizen)
        make_case(item, applicant=citizen.person, actor=citizen)
    first, second = selectors.notifications_for_user(citizen)
    with pytest.raises(TongbanError) as caught:
        notifications.notification_read(notification=first, actor=make_user(role="citizen"))
    assert caught.value.code == "permission_denied"
    notifications.notification_read(notification=first, actor=citizen)
    assert selectors.notifications_unread_count(citizen) == 1
    assert notifications.notifications_read_all(actor=citizen) == 1
    assert selectors.notifications_unread_count(citizen) == 0
    assert second.pk
