"""到期提醒与自动续证: reminder steps sent once each within the window, renewals opened once
for designated types and completed at once where the instant-approval rules pass, or left
with staff where they do not; the dry run, the command, and who sees what."""

import datetime as dt
import io

import pytest
from django.conf import settings as django_settings
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import IntegrityError, transaction
from django.urls import reverse
from django.utils import timezone, translation

from tests.cases.apply_factories import (
    add_material,
    make_city,
    population_row,
    upload_dir,  # noqa: F401  (autouse fixture)
    use_permit_renewal_rules,
)
from tests.cases.factories import make_item
from tests.exchange.factories import make_grant, put_rows
from tests.licensing.factories import issue_residence_permit
from tests.people.factories import make_organization, make_person, make_user
from tongban.audit.models import AuditEntry
from tongban.cases import expiry, services
from tongban.cases.expiry import expiry_marker, expiry_sweep, reminder_steps, step_due
from tongban.cases.models import Case, ExpiryReminder, Notification
from tongban.cases.selectors import cases_for_staff
from tongban.cases.tasks import expiry_sweep_task
from tongban.catalog.models import LicenseType
from tongban.exchange.proofs import automated_grant_ensure
from tongban.licensing.models import License
from tongban.licensing.services import license_issue, license_status_set
from tongban.people.models import User

pytestmark = pytest.mark.django_db
State = Case.State
ITEM = "PERMIT-RENEW"
TODAY = dt.date(2026, 6, 1)


@pytest.fixture
def city(settings, tmp_path):
    settings.TONGBAN_EXPIRY_REMINDER_DAYS = (90, 30, 7)
    city = make_city()
    use_permit_renewal_rules(settings, tmp_path, city.police.license_type.code, ITEM)
    make_grant(
        consumer=city.police.department,
        dataset=city.datasets["population"],
        fields=["division_code"],
    )
    return city


@pytest.fixture
def permit_type(city) -> LicenseType:
    return city.police.license_type


@pytest.fixture
def renewal(city, permit_type):
    """The renewal item of the permit, with rules and an automated signer: designated."""
    item = make_item(city.police, code=ITEM, name="居住证签注")
    add_material(item, "residence_permit", license_types=[permit_type])
    automated_grant_ensure(
        department=city.police.department,
        license_types=[permit_type],
        actor="test",
        suffix="-rules-signer",
    )
    permit_type.renewal_item = item
    permit_type.auto_renew = True
    permit_type.save()
    return item


def holder(city, *, division_code="370102", account=True):
    person = make_person(division_code=division_code)
    put_rows(city.datasets["population"], population_row(person))
    return make_user(role="citizen", person=person) if account else person


def expiring(city, person, days_left: int, *, on: dt.date = TODAY) -> License:
    """A permit of the person's that expires `days_left` days after `on`."""
    license = issue_residence_permit(city.police, holder=person)
    License.objects.filter(pk=license.pk).update(
        valid_from=on - dt.timedelta(days=300), valid_until=on + dt.timedelta(days=days_left)
    )
    license.refresh_from_db()
    return license


def reminders(license: License) -> list[tuple[int, dt.date]]:
    return list(
        ExpiryReminder.objects.filter(license=license)
        .order_by("-days_before")
        .values_list("days_before", "sent_on")
    )


def texts(user: User) -> list[str]:
    return list(
        Notification.objects.filter(user=user, event="license_expiry")
        .order_by("pk")
        .values_list("text", flat=True)
    )


# --- configuration ----------------------------------------------------------------------


def test_steps_come_from_the_type_or_the_platform_default(city, permit_type, settings):
    assert reminder_steps(permit_type) == (90, 30, 7)
    permit_type.reminder_days = [10, 60, 60, -1, "x"]
    assert reminder_steps(permit_type) == (60, 10)
    permit_type.kind = LicenseType.Kind.PROOF
    assert reminder_steps(permit_type) == ()


@pytest.mark.parametrize(
    ("days_left", "step"),
    [(91, None), (90, 90), (31, 90), (30, 30), (8, 30), (7, 7), (0, 7), (-1, None)],
)
def test_the_step_due_is_the_smallest_not_below_the_days_left(days_left, step):
    assert step_due((90, 30, 7), days_left) == step


# --- the window ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("days_left", "sent"),
    [(91, []), (90, [90]), (0, [7]), (-1, [])],
    ids=["outside", "at-the-window-edge", "expires-today", "already-expired"],
)
def test_the_window_edges(city, days_left, sent):
    user = holder(city)
    license = expiring(city, user.person, days_left)

    outcome = expiry_sweep(on=TODAY)

    assert [step for step, _on in reminders(license)] == sent
    assert (outcome.in_window, outcome.reminded, outcome.notifications) == (
        len(sent),
        len(sent),
        len(sent),
    )


def test_a_revoked_or_suspended_license_gets_no_reminder(city):
    user = holder(city)
    revoked = expiring(city, user.person, 20)
    suspended = expiring(city, user.person, 20)
    staff = city.police.staff
    license_status_set(license=revoked, status="revoked", reason="注销", actor=staff)
    license_status_set(license=suspended, status="suspended", reason="中止", actor=staff)

    outcome = expiry_sweep(on=TODAY)

    assert (outcome.in_window, outcome.reminded) == (0, 0)
    assert ExpiryReminder.objects.count() == Notification.objects.count() == 0


def test_a_holder_without_an_account_is_recorded_once_and_told_nothing(city):
    person = holder(city, account=False)
    license = expiring(city, person, 20)

    first = expiry_sweep(on=TODAY)
    second = expiry_sweep(on=TODAY)

    assert (first.reminded, first.notifications, first.no_account) == (1, 0, 1)
    assert (second.reminded, second.already_done) == (0, 1)
    assert reminders(license) == [(30, TODAY)]
    assert ExpiryReminder.objects.get().recipients == 0
    assert Notification.objects.count() == 0


def test_the_holder_is_told_which_license_expires_when_and_where_to_renew(city, renewal, settings):
    settings.LANGUAGE_CODE = "en"
    renewal.result_license_type.auto_renew = False
    renewal.result_license_type.save()
    user = holder(city)
    license = expiring(city, user.person, 30)

    expiry_sweep(on=TODAY)

    note = Notification.objects.get(user=user)
    assert note.event == "license_expiry" and note.case is None
    assert note.text == (
        f"Your 居住证 (No. {license.number}) expires on 2026-07-01, in 30 days. "
        "Apply online for its renewal: 居住证签注."
    )
    assert note.link == reverse("cases:apply", args=[ITEM])
    entry = AuditEntry.objects.get(action="license.expiry_remind")
    assert (entry.actor, entry.subject_id, entry.after) == (
        "system:license-expiry",
        user.person.resident_id,
        {
            "days_before": 30,
            "valid_until": "2026-07-01",
            "recipients": 1,
            "renewal_case": None,
            "renewal_state": None,
            "renewal_error": None,
        },
    )


def test_the_message_text_in_english(city, settings):
    settings.LANGUAGE_CODE = "en"
    user = holder(city)
    license = expiring(city, user.person, 7)

    expiry_sweep(on=TODAY)

    note = Notification.objects.get(user=user)
    assert note.text == (
        f"Your 居住证 (No. {license.number}) expires on 2026-06-08, in 7 days. "
        "See your wallet for how to renew it."
    )
    assert note.link == reverse("licensing:license", args=[license.pk])


def test_an_organizations_agents_are_reminded(city):
    organization_type = city.police.license_type
    organization_type.holder_kind = "organization"
    organization_type.save()
    organization = make_organization()
    agent = make_user(role="org_agent", organization=organization)
    other_agent = make_user(role="org_agent", organization=organization)
    make_user(role="org_agent")  # another organization's agent
    license = license_issue(
        license_type=organization_type,
        holder=organization,
        surface={"address": "演示市历下区", "since": "2024-05-06"},
        actor=city.police.staff,
    )
    License.objects.filter(pk=license.pk).update(
        valid_from=TODAY - dt.timedelta(days=300), valid_until=TODAY + dt.timedelta(days=10)
    )

    outcome = expiry_sweep(on=TODAY)

    assert (outcome.reminded, outcome.notifications) == (1, 2)
    assert set(Notification.objects.values_list("user", flat=True)) == {agent.pk, other_agent.pk}


# --- each step once ------------------------------------------------------------------------


def test_each_step_is_sent_once_across_repeated_sweeps_and_days(city):
    user = holder(city)
    license = expiring(city, user.person, 31)

    days = [TODAY + dt.timedelta(days=n) for n in range(0, 32)]
    for day in days:
        expiry_sweep(on=day)
        expiry_sweep(on=day)

    assert reminders(license) == [
        (90, TODAY),
        (30, TODAY + dt.timedelta(days=1)),
        (7, TODAY + dt.timedelta(days=24)),
    ]
    assert Notification.objects.filter(user=user).count() == 3


def test_a_sweep_that_missed_days_sends_only_the_latest_step(city):
    user = holder(city)
    license = expiring(city, user.person, 5)

    expiry_sweep(on=TODAY)

    assert reminders(license) == [(7, TODAY)]
    assert len(texts(user)) == 1


def test_a_type_sets_its_own_window(city, permit_type):
    permit_type.reminder_days = [60, 10]
    permit_type.save()
    user = holder(city)
    outside = expiring(city, user.person, 61)
    inside = expiring(city, user.person, 60)

    expiry_sweep(on=TODAY)

    assert (reminders(outside), reminders(inside)) == ([], [(60, TODAY)])


def test_a_step_is_recorded_once_by_the_database(city):
    user = holder(city)
    license = expiring(city, user.person, 20)
    ExpiryReminder.objects.create(license=license, days_before=30, sent_on=TODAY)

    with pytest.raises(IntegrityError), transaction.atomic():
        ExpiryReminder.objects.create(license=license, days_before=30, sent_on=TODAY)


def test_a_step_claimed_by_a_concurrent_sweep_is_not_sent_again(city, monkeypatch):
    user = holder(city)
    license = expiring(city, user.person, 20)
    # Another sweep records the step after this one looked (it sees none) and before it
    # inserts: the unique constraint refuses the second, and nothing else is written.
    looked = ExpiryReminder.objects.filter

    def racing(*args, **kwargs):
        query = looked(*args, **kwargs)
        if not ExpiryReminder.objects.exists():
            ExpiryReminder.objects.create(license=license, days_before=30, sent_on=TODAY)
            return ExpiryReminder.objects.none()
        return query

    monkeypatch.setattr(ExpiryReminder.objects, "filter", racing)
    outcome = expiry_sweep(on=TODAY)

    assert (outcome.reminded, outcome.already_done) == (0, 1)
    assert reminders(license) == [(30, TODAY)]
    assert Notification.objects.count() == 0


def test_a_failure_on_one_license_leaves_it_untouched_and_the_others_done(city, monkeypatch):
    broken, fine = holder(city), holder(city)
    failing = expiring(city, broken.person, 20)
    working = expiring(city, fine.person, 21)
    accounts = expiry.holder_accounts

    def gateway(license):
        if license.pk == failing.pk:
            raise RuntimeError("the account service is down")
        return accounts(license)

    monkeypatch.setattr(expiry, "holder_accounts", gateway)
    outcome = expiry_sweep(on=TODAY)

    assert (outcome.reminded, outcome.errors) == (1, 1)
    assert (reminders(failing), reminders(working)) == ([], [(30, TODAY)])
    assert list(Notification.objects.values_list("user", flat=True)) == [fine.pk]


# --- renewal of designated types -----------------------------------------------------------


def test_a_designated_type_is_renewed_at_once_when_the_rules_pass(city, renewal):
    user = holder(city)
    old = expiring(city, user.person, 30, on=timezone.localdate())

    outcome = expiry_sweep()

    assert (outcome.renewals_opened, outcome.renewals_approved, outcome.renewals_queued) == (
        1,
        1,
        0,
    )
    case = Case.objects.get(renews=old)
    assert (case.state, case.decision, case.item, case.applicant_person) == (
        State.COMPLETED,
        "approved",
        renewal,
        user.person,
    )
    # submitted by the department's renewal system account, which nobody can log in to
    assert (case.submitted_by.username, case.submitted_by.is_active) == ("police-renewal", False)
    assert case.submitted_by.has_usable_password() is False
    assert case.materials[0]["source"] == "license"
    assert case.materials[0]["license"] == old.identifier
    # the new license is the next version; the old one stays valid until its own date
    new = case.result_license
    assert (new.predecessor, new.version, new.holder_person) == (old, 2, user.person)
    assert new.valid_until == new.valid_from.replace(year=new.valid_from.year + 1)
    old.refresh_from_db()
    assert (old.status, old.valid_until) == ("valid", timezone.localdate() + dt.timedelta(days=30))
    reminder = ExpiryReminder.objects.get(license=old)
    assert (reminder.days_before, reminder.renewal_case) == (30, case)
    note = Notification.objects.get(user=user, event="license_expiry")
    assert note.link == reverse("licensing:license", args=[new.pk])
    with translation.override("en"):
        assert expiry_marker(license=old, user=user).renewed is True


def test_a_renewed_license_gets_no_more_reminders(city, renewal):
    user = holder(city)
    old = expiring(city, user.person, 30, on=timezone.localdate())
    expiry_sweep()

    later = [expiry_sweep(on=timezone.localdate() + dt.timedelta(days=n)) for n in (1, 23, 30)]

    assert [o.reminded for o in later] == [0, 0, 0]
    assert [o.already_done for o in later] == [1, 1, 1]
    assert reminders(old) == [(30, timezone.localdate())]
    assert Case.objects.filter(renews=old).count() == 1


def test_a_renewal_waits_for_staff_when_the_rules_fail(city, renewal):
    user = holder(city, division_code="110101")  # registered in another city: rules fail
    put_rows(city.datasets["population"], population_row(user.person, division_code="110101"))
    old = expiring(city, user.person, 30, on=timezone.localdate())

    outcome = expiry_sweep()

    assert (outcome.renewals_opened, outcome.renewals_approved, outcome.renewals_queued) == (
        1,
        0,
        1,
    )
    case = Case.objects.get(renews=old)
    assert (case.state, case.result_license, case.rule_report["outcome"]) == (
        State.SUBMITTED,
        None,
        "to_staff",
    )
    assert list(cases_for_staff(city.police.staff)) == [case]
    note = Notification.objects.get(user=user, event="license_expiry")
    assert note.link == reverse("cases:case", args=[case.pk])
    assert case.number in note.text

    # while it is open, no more reminders
    assert expiry_sweep(on=timezone.localdate() + dt.timedelta(days=23)).reminded == 0

    # staff approve it: the license issued is the next version of the one renewed
    for step in ("accept", "review"):
        case = getattr(services, f"case_{step}")(case=case, actor=city.police.staff)
    case = services.case_decide(
        case=case,
        actor=city.police.staff,
        approve=True,
        reasons="",
        surface={"address": "北京市东城区", "since": "2024-05-06"},
    )
    assert (case.result_license.predecessor, case.result_license.version) == (old, 2)
    assert expiry_sweep(on=timezone.localdate() + dt.timedelta(days=24)).reminded == 0


def test_the_renewal_is_applied_for_once_per_license(city, renewal):
    user = holder(city, division_code="110101")
    put_rows(city.datasets["population"], population_row(user.person, division_code="110101"))
    old = expiring(city, user.person, 30, on=timezone.localdate())
    expiry_sweep()
    case = Case.objects.get(renews=old)
    services.case_withdraw(case=case, actor=user, note="自己去窗口办")

    outcome = expiry_sweep(on=timezone.localdate() + dt.timedelta(days=23))

    # the next step reminds again, asking the holder to apply, and opens nothing
    assert (outcome.reminded, outcome.renewals_opened) == (1, 0)
    assert Case.objects.filter(renews=old).count() == 1
    last = Notification.objects.filter(user=user, event="license_expiry").order_by("pk").last()
    assert last.link == reverse("cases:apply", args=[ITEM])
    marker = expiry_marker(license=old, user=user)
    assert (marker.case, marker.case_open, marker.item) == (case, False, renewal)


def test_a_renewal_that_cannot_be_applied_for_leaves_the_reminder(city, renewal):
    add_material(renewal, "photo", name="照片")  # must be uploaded: the platform cannot
    user = holder(city)
    old = expiring(city, user.person, 30, on=timezone.localdate())

    outcome = expiry_sweep()

    assert (outcome.reminded, outcome.renewals_opened, outcome.renewals_failed) == (1, 0, 1)
    assert Case.objects.count() == 0
    assert ExpiryReminder.objects.get(license=old).renewal_case is None
    assert AuditEntry.objects.get(action="license.expiry_remind").after["renewal_error"] == (
        "materials_missing"
    )
    assert Notification.objects.get(user=user).link == reverse("cases:apply", args=[ITEM])


def test_the_holders_own_open_renewal_application_stops_the_reminders(city, renewal):
    renewal.result_license_type.auto_renew = False
    renewal.result_license_type.save()
    user = holder(city, division_code="110101")
    put_rows(city.datasets["population"], population_row(user.person, division_code="110101"))
    old = expiring(city, user.person, 30, on=timezone.localdate())
    services.application_submit(item=renewal, actor=user, idempotency_key="own-renewal-1")

    outcome = expiry_sweep()

    assert (outcome.in_window, outcome.reminded, outcome.already_done) == (1, 0, 1)
    assert reminders(old) == []


def test_a_newer_license_of_the_type_counts_as_renewed(city):
    user = holder(city)
    old = expiring(city, user.person, 30)
    issue_residence_permit(city.police, holder=user.person)  # valid a year from today

    assert expiry_sweep(on=TODAY).reminded == 0
    assert expiry.is_renewed(old) is True


def test_only_the_holders_license_is_renewed_by_an_application(city, renewal):
    user = holder(city)
    stranger_license = expiring(city, holder(city).person, 30)

    with pytest.raises(services.CaseInputInvalid) as refused:
        services.application_submit(
            item=renewal, actor=user, idempotency_key="renew-other-1", renews=stranger_license
        )

    assert refused.value.code == "renewal_mismatch"
    assert Case.objects.count() == 0


# --- dry run ---------------------------------------------------------------------------------


def test_the_dry_run_counts_and_changes_nothing(city, renewal):
    user = holder(city)
    expiring(city, user.person, 30, on=timezone.localdate())
    expiring(city, holder(city).person, 89, on=timezone.localdate())
    counts = (
        AuditEntry.objects.count(),
        User.objects.count(),
        Case.objects.count(),
        License.objects.count(),
    )

    outcome = expiry_sweep(dry_run=True)

    assert (outcome.dry_run, outcome.in_window, outcome.reminded, outcome.renewals_opened) == (
        True,
        2,
        2,
        2,
    )
    assert (outcome.notifications, outcome.renewals_approved) == (0, 0)
    assert outcome.as_dict() == {
        "on": timezone.localdate().isoformat(),
        "dry_run": True,
        "in_window": 2,
        "reminded": 2,
        "notifications": 0,
        "no_account": 0,
        "already_done": 0,
        "renewals_opened": 2,
        "renewals_approved": 0,
        "renewals_queued": 0,
        "renewals_failed": 0,
        "errors": 0,
    }
    assert (
        AuditEntry.objects.count(),
        User.objects.count(),
        Case.objects.count(),
        License.objects.count(),
    ) == counts
    assert ExpiryReminder.objects.count() == Notification.objects.count() == 0


# --- what the holder sees ----------------------------------------------------------------


def test_the_wallet_marks_an_expiring_license_with_its_renewal_link(client, city, renewal):
    renewal.result_license_type.auto_renew = False
    renewal.result_license_type.save()
    user = holder(city)
    soon = expiring(city, user.person, 12, on=timezone.localdate())
    later = issue_residence_permit(city.police, holder=make_person())  # someone else's
    client.force_login(user)
    client.cookies[django_settings.LANGUAGE_COOKIE_NAME] = "en"

    page = client.get(reverse("licensing:wallet")).content.decode()

    assert page.count("Expires soon") == 1
    assert "Expires in 12 days." in page
    assert reverse("cases:apply", args=[ITEM]) in page
    assert expiry_marker(license=later, user=user) is None  # not theirs: no marker
    assert expiry_marker(license=soon, user=make_user(role="citizen")) is None


def test_the_wallet_shows_the_open_renewal_case(client, city, renewal):
    user = holder(city, division_code="110101")
    put_rows(city.datasets["population"], population_row(user.person, division_code="110101"))
    old = expiring(city, user.person, 30, on=timezone.localdate())
    expiry_sweep()
    case = Case.objects.get(renews=old)
    client.force_login(user)
    client.cookies[django_settings.LANGUAGE_COOKIE_NAME] = "en"

    page = client.get(reverse("licensing:wallet")).content.decode()

    assert f"Renewal application {case.number}: Submitted" in page
    assert reverse("cases:case", args=[case.pk]) in page
    assert reverse("cases:apply", args=[ITEM]) not in page


def test_a_citizen_sees_only_their_own_reminders(client, city):
    user, other = holder(city), holder(city)
    expiring(city, user.person, 30)
    expiring(city, other.person, 7)
    expiry_sweep(on=TODAY)
    client.force_login(user)
    client.cookies[django_settings.LANGUAGE_COOKIE_NAME] = "en"

    page = client.get(reverse("cases:messages")).content.decode()
    listed = client.get("/api/v1/cases/notifications").json()

    assert "还剩 30 天" in page and "还剩 7 天" not in page  # stored in the platform language
    assert [(m["event"], m["link"] != "") for m in listed["items"]] == [("license_expiry", True)]
    assert Notification.objects.get(pk=listed["items"][0]["id"]).user == user


def test_the_messages_page_marks_all_read(client, city):
    user = holder(city)
    expiring(city, user.person, 30)
    expiry_sweep(on=TODAY)
    client.force_login(user)

    response = client.post(reverse("cases:messages"))

    assert response.status_code == 302
    assert Notification.objects.filter(user=user, read_at__isnull=True).count() == 0


def test_staff_have_no_messages_page(client, city):
    client.force_login(city.police.staff)

    assert client.get(reverse("cases:messages")).status_code == 403


# --- the command ------------------------------------------------------------------------------


def test_the_command_sweeps_with_progress_and_counts(city):
    user = holder(city)
    license = expiring(city, user.person, 30)
    out, err = io.StringIO(), io.StringIO()

    on = TODAY.isoformat()
    call_command("expiry", "--dry-run", "--on", on, stdout=out, stderr=err)
    assert ExpiryReminder.objects.count() == 0
    call_command("expiry", "--on", on, stdout=out, stderr=err)

    lines = out.getvalue().splitlines()
    assert lines[0].startswith("expiry dry run on 2026-06-01: 1 in window, 1 reminded, 0 notif")
    assert lines[1] == (
        "expiry run on 2026-06-01: 1 in window, 1 reminded, 1 notifications, 0 no account, "
        "0 already done, 0 renewals opened, 0 renewals approved, 0 renewals queued, "
        "0 renewals failed, 0 errors"
    )
    assert "licenses" in err.getvalue() and "1/1" in err.getvalue()
    assert reminders(license) == [(30, TODAY)]


def test_the_command_refuses_a_bad_date(city):
    with pytest.raises(CommandError, match="not a date"):
        call_command("expiry", "--on", "2026-13-01")


def test_the_daily_task_sweeps_today_and_returns_the_counts(city):
    today = timezone.localdate()
    license = expiring(city, holder(city).person, 30, on=today)

    first = expiry_sweep_task.call()
    again = expiry_sweep_task.call()

    assert (first["on"], first["in_window"], first["reminded"], first["notifications"]) == (
        today.isoformat(),
        1,
        1,
        1,
    )
    assert (again["in_window"], again["reminded"], again["notifications"]) == (1, 0, 0)
    assert reminders(license) == [(30, today)]
