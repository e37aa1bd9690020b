"""Mandates (委托代办): a resident lets a family member apply for them, for every service or
chosen ones, for at most a year, with or without agreeing to data reads in their name;
window staff record a paper authorization; a withdrawn, expired or other-items mandate
refuses an application and changes nothing."""

import datetime as dt
import re
import threading
import uuid

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection, transaction
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
from tests.licensing.factories import issue_residence_permit
from tests.people.factories import login_verified, make_department, make_person, make_user
from tongban.audit.models import AuditEntry
from tongban.cases import mandates, services
from tongban.cases.models import Case, Mandate, Submission
from tongban.core.errors import TongbanError
from tongban.licensing.models import Consent

pytestmark = pytest.mark.django_db


@pytest.fixture
def city():
    return make_city()


@pytest.fixture
def elder(city):
    """王奶奶, 82, holding a residence permit, with rows in both datasets and an account."""
    user = make_user(
        role="citizen", person=make_person(name="王奶奶", birth=dt.date(1944, 3, 8), sex="F")
    )
    issue_residence_permit(city.police, holder=user.person)
    give_rows(city, user.person)
    return user


@pytest.fixture
def son():
    return make_user(role="citizen", person=make_person(name="王小明"))


def caught(call) -> TongbanError:
    with pytest.raises(TongbanError) as raised:
        call()
    return raised.value


def later(days: int) -> dt.date:
    return timezone.localdate() + dt.timedelta(days=days)


def grant(elder, son, **kw) -> Mandate:
    return mandates.mandate_grant(
        actor=elder,
        agent_resident_id=son.person.resident_id,
        agent_name=son.person.name,
        **({"all_items": True, "valid_until": later(90)} | kw),
    )


def counts() -> tuple[int, int, int, int]:
    return (
        Mandate.objects.count(),
        Submission.objects.count(),
        Case.objects.count(),
        AuditEntry.objects.count(),
    )


# --- granting ---------------------------------------------------------------------------


def test_a_resident_authorizes_a_family_member(city, elder, son):
    item = make_health_item(city)

    mandate = grant(elder, son, all_items=False, item_codes=[item.code], may_consent=True)

    assert (mandate.principal, mandate.agent, mandate.created_by) == (
        elder.person,
        son.person,
        elder,
    )
    assert [i.code for i in mandate.items.all()] == [item.code]
    assert (mandate.valid_from, mandate.valid_until) == (timezone.localdate(), later(90))
    assert (mandate.status, mandate.may_consent, mandate.paper_reference) == ("active", True, "")
    entry = AuditEntry.objects.get(action="mandate.grant")
    assert (entry.actor, entry.subject_id, entry.object_id) == (
        f"user:{elder.pk}:{elder.username}",
        elder.person.resident_id,
        str(mandate.pk),
    )
    assert entry.after["items"] == [item.code]
    assert entry.after["agent"] == son.person.masked_id


@pytest.mark.parametrize(
    ("name_change", "id_change"),
    [("王小红", None), (None, "unknown")],
    ids=["name mismatch", "unknown number"],
)
def test_an_agent_named_wrongly_is_refused_alike(elder, son, name_change, id_change):
    other = make_person(name="李四") if id_change else None
    if other is not None:
        other_id = other.resident_id
        other.delete()  # a valid number no one holds
    before = counts()
    error = caught(
        lambda: mandates.mandate_grant(
            actor=elder,
            agent_resident_id=other_id if other else son.person.resident_id,
            agent_name=name_change or son.person.name,
            all_items=True,
            valid_until=later(30),
        )
    )
    assert (error.code, error.status, error.details) == (
        "person_unmatched",
        422,
        {"field": "agent_resident_id"},
    )
    assert counts() == before


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"agent_resident_id": "110101199001011234"}, "agent_resident_id"),
        ({"agent_name": " "}, "agent_name"),
        ({"valid_until": later(366)}, "valid_until"),
        ({"valid_until": later(-1)}, "valid_until"),
        ({"valid_from": later(-1)}, "valid_from"),
        ({"all_items": False}, "items"),
        ({"all_items": False, "item_codes": ["NO-SUCH-ITEM"]}, "items"),
    ],
)
def test_a_mandate_asked_wrongly_is_refused(elder, son, changes, field):
    before = counts()
    kw = {
        "agent_resident_id": son.person.resident_id,
        "agent_name": son.person.name,
        "all_items": True,
        "valid_until": later(30),
    } | changes
    error = caught(lambda: mandates.mandate_grant(actor=elder, **kw))
    assert (error.code, error.details) == ("mandate_input_invalid", {"field": field})
    assert counts() == before


def test_a_year_is_the_longest_mandate(elder, son):
    assert grant(elder, son, valid_until=later(365)).valid_until == later(365)


def test_no_one_authorizes_themself_and_only_residents_authorize(elder, son):
    error = caught(lambda: grant(elder, elder))
    assert error.code == "mandate_to_self"
    staff = make_user(role="staff")
    error = caught(lambda: grant(staff, son))
    assert error.code == "permission_denied"
    assert Mandate.objects.count() == 0


def test_window_staff_record_a_paper_authorization(elder, son):
    clerk = make_user(role="staff", department=make_department(code="center", name="政务中心"))
    with_reference = {
        "actor": clerk,
        "principal": elder.person,
        "agent_resident_id": son.person.resident_id,
        "agent_name": son.person.name,
        "all_items": True,
        "valid_until": later(180),
    }
    error = caught(lambda: mandates.mandate_record_by_staff(**with_reference, paper_reference=""))
    assert (error.code, error.details) == ("mandate_input_invalid", {"field": "paper_reference"})
    error = caught(
        lambda: mandates.mandate_record_by_staff(
            **(with_reference | {"actor": son}), paper_reference="WT-1"
        )
    )
    assert error.code == "permission_denied"
    assert Mandate.objects.count() == 0

    mandate = mandates.mandate_record_by_staff(
        **with_reference, paper_reference="授权委托书 2026-0042"
    )

    assert (mandate.principal, mandate.agent, mandate.created_by, mandate.paper_reference) == (
        elder.person,
        son.person,
        clerk,
        "授权委托书 2026-0042",
    )
    entry = AuditEntry.objects.get(action="mandate.grant")
    assert (entry.actor, entry.after["paper_reference"]) == (
        f"user:{clerk.pk}:{clerk.username}",
        "授权委托书 2026-0042",
    )


def test_window_staff_find_a_person_by_number_and_name_audited(elder):
    clerk = make_user(role="staff")
    found = mandates.window_person_find(
        actor=clerk, resident_id=elder.person.resident_id, name="王奶奶"
    )
    assert found == elder.person
    entry = AuditEntry.objects.get(action="window.person_find")
    assert entry.subject_id == elder.person.resident_id
    error = caught(
        lambda: mandates.window_person_find(
            actor=clerk, resident_id=elder.person.resident_id, name="王爷爷"
        )
    )
    assert error.code == "person_unmatched"
    assert AuditEntry.objects.filter(action="window.person_find").count() == 1


# --- withdrawing and validity ----------------------------------------------------------


def test_the_principal_or_staff_withdraw_and_no_one_else(city, elder, son):
    item = make_health_item(city)
    mandate = grant(elder, son)
    assert mandates.mandate_in_force(elder.person, son.person, item) == mandate

    error = caught(lambda: mandates.mandate_withdraw(mandate=mandate, actor=son))
    assert error.code == "mandate_not_found"
    mandate.refresh_from_db()
    assert mandate.status == "active"

    withdrawn = mandates.mandate_withdraw(mandate=mandate, actor=elder)

    assert (withdrawn.status, withdrawn.withdrawn_at is not None) == ("withdrawn", True)
    assert mandates.mandate_in_force(elder.person, son.person, item) is None
    entry = AuditEntry.objects.get(action="mandate.withdraw")
    assert (entry.before, entry.after) == ({"status": "active"}, {"status": "withdrawn"})
    error = caught(lambda: mandates.mandate_withdraw(mandate=mandate, actor=elder))
    assert (error.code, error.status) == ("mandate_withdrawn", 409)

    other = grant(elder, son)
    assert mandates.mandate_withdraw(mandate=other, actor=make_user(role="staff")).withdrawn_at


def test_a_mandate_is_in_force_between_its_dates_for_its_items(city, elder, son):
    item = make_health_item(city)
    other_item = make_health_item(city, code="HEALTH-2")
    mandate = grant(
        elder,
        son,
        all_items=False,
        item_codes=[item.code],
        valid_from=later(2),
        valid_until=later(9),
    )

    def in_force(on, which=item):
        return mandates.mandate_in_force(elder.person, son.person, which, on=on)

    assert [in_force(later(d)) for d in (1, 2, 9, 10)] == [None, mandate, mandate, None]
    assert in_force(later(5), other_item) is None
    assert mandates.mandate_in_force(son.person, elder.person, item, on=later(5)) is None


# --- applying under a mandate -----------------------------------------------------------


def apply(son, elder, item=None, bundle=None, **kw) -> Submission:
    return services.application_submit(
        item=item,
        bundle=bundle,
        actor=son,
        on_behalf=elder.person,
        idempotency_key=uuid.uuid4().hex,
        **kw,
    )


@pytest.mark.parametrize("how", ["none", "withdrawn", "expired", "other items", "not yet"])
def test_without_a_mandate_in_force_for_every_item_nothing_is_written(city, elder, son, how):
    grant_reads(city.health, city)
    item = make_health_item(city)
    other = make_health_item(city, code="HEALTH-2")
    if how == "withdrawn":
        mandates.mandate_withdraw(mandate=grant(elder, son), actor=elder)
    elif how == "expired":
        mandate = grant(elder, son)
        Mandate.objects.filter(pk=mandate.pk).update(valid_from=later(-30), valid_until=later(-1))
    elif how == "other items":
        grant(elder, son, all_items=False, item_codes=[other.code])
    elif how == "not yet":
        grant(elder, son, valid_from=later(1))
    upload = upload_pdf(son, "marriage_certificate")
    before = counts()

    error = caught(lambda: apply(son, elder, item, uploads={"marriage_certificate": [upload.pk]}))

    assert (error.code, error.status) == ("mandate_not_in_force", 403)
    assert counts() == before
    upload.refresh_from_db()
    assert upload.submission_id is None


def test_a_bundle_needs_every_item_covered(city, elder, son):
    grant_reads(city.health, city)
    first, second = make_health_item(city), make_health_item(city, code="HEALTH-2")
    bundle = make_bundle([first, second])
    grant(elder, son, all_items=False, item_codes=[first.code])
    error = caught(
        lambda: services.application_prepare(bundle=bundle, actor=son, on_behalf=elder.person)
    )
    assert error.code == "mandate_not_in_force"

    covering = grant(elder, son, all_items=False, item_codes=[first.code, second.code])
    form = services.application_prepare(bundle=bundle, actor=son, on_behalf=elder.person)
    assert form.mandate == covering


def test_an_agent_without_the_consent_flag_uploads_conditional_data(city, elder, son):
    grant_reads(city.health, city)
    item = make_health_item(city)
    mandate = grant(elder, son, may_consent=False)

    form = services.application_prepare(item=item, actor=son, on_behalf=elder.person)

    assert (form.applicant, form.on_behalf, form.mandate) == (elder.person, True, mandate)
    assert [(c.key, c.source) for c in form.materials] == [
        ("residence_permit", "license"),
        ("household", "dataset"),
        ("marriage_certificate", "upload"),
    ]
    assert form.consents == []
    upload = upload_pdf(son, "marriage_certificate")
    submission = apply(son, elder, item, uploads={"marriage_certificate": [upload.pk]})
    assert (submission.applicant_person, submission.submitted_by, submission.mandate) == (
        elder.person,
        son,
        mandate,
    )
    assert submission.on_behalf_note == ""
    assert Consent.objects.count() == 0
    entry = AuditEntry.objects.get(action="submission.on_behalf")
    assert (entry.actor, entry.subject_id, entry.after) == (
        f"user:{son.pk}:{son.username}",
        elder.person.resident_id,
        {"mandate": mandate.pk},
    )


def test_an_agent_with_the_consent_flag_agrees_in_the_principals_name(city, elder, son):
    grant_reads(city.health, city)
    item = make_health_item(city)
    mandate = grant(elder, son, may_consent=True)

    form = services.application_prepare(item=item, actor=son, on_behalf=elder.person)
    assert [c.dataset.code for c in form.consents] == ["marriage"]

    submission = apply(son, elder, item, consent_datasets=["marriage"])

    case = submission.cases.get()
    assert {m["key"]: m["source"] for m in case.materials} == {
        "residence_permit": "license",
        "household": "dataset",
        "marriage_certificate": "dataset",
    }
    consent = Consent.objects.get()
    assert (consent.holder_person_id, consent.grantee_department) == (elder.person.pk, city.health)
    granted = AuditEntry.objects.get(action="consent.grant")
    assert (granted.actor, granted.subject_id) == (
        f"user:{son.pk}:{son.username}",
        elder.person.resident_id,
    )
    under = AuditEntry.objects.get(action="mandate.consent")
    assert (under.object_id, under.subject_id, under.after["consent"]) == (
        str(mandate.pk),
        elder.person.resident_id,
        consent.pk,
    )


def test_the_principal_and_the_agent_both_see_the_case(city, elder, son):
    from tongban.cases import selectors

    grant_reads(city.health, city)
    item = make_health_item(city)
    grant(elder, son, may_consent=True)
    case = apply(son, elder, item, consent_datasets=["marriage"]).cases.get()
    stranger = make_user(role="citizen")

    assert list(selectors.cases_for_applicant(elder)) == [case]
    assert list(selectors.cases_for_applicant(son)) == [case]
    assert list(selectors.cases_for_applicant(stranger)) == []
    # and the agent may withdraw what they submitted
    assert services.case_withdraw(case=case, actor=son).state == "withdrawn"


def test_window_staff_keep_their_path_with_the_paper_reference(city, elder):
    grant_reads(city.health, city)
    item = make_health_item(city)
    clerk = make_user(role="staff", department=make_department(code="center", name="政务中心"))
    upload = upload_pdf(clerk, "marriage_certificate")
    submission = services.application_submit(
        item=item,
        actor=clerk,
        on_behalf=elder.person,
        on_behalf_note="授权委托书 2026-0042",
        uploads={"marriage_certificate": [upload.pk]},
        idempotency_key=uuid.uuid4().hex,
    )
    assert (submission.mandate, submission.on_behalf_note) == (None, "授权委托书 2026-0042")


# --- pages --------------------------------------------------------------------------------


def grant_data(son, **changes) -> dict:
    return {
        "grant-agent_resident_id": son.person.resident_id,
        "grant-agent_name": son.person.name,
        "grant-scope": "all",
        "grant-valid_until": later(60).isoformat(),
    } | changes


def test_the_principal_grants_and_withdraws_on_the_page(client, elder, son):
    client.force_login(elder)
    assert client.get("/cases/mandates/").status_code == 200

    refused = client.post("/cases/mandates/", grant_data(son, **{"grant-agent_name": "王小红"}))
    assert refused.status_code == 422
    assert "person_unmatched" in refused.content.decode()
    assert Mandate.objects.count() == 0

    response = client.post("/cases/mandates/", grant_data(son, **{"grant-may_consent": "on"}))
    assert response.status_code == 302
    mandate = Mandate.objects.get()
    assert (mandate.agent, mandate.all_items, mandate.may_consent) == (son.person, True, True)
    page = client.get("/cases/mandates/").content.decode()
    assert son.person.masked_id in page and son.person.resident_id not in page

    assert client.post(f"/cases/mandates/{mandate.pk}/withdraw/").status_code == 302
    mandate.refresh_from_db()
    assert mandate.status == "withdrawn"


def test_a_citizen_cannot_see_or_withdraw_anothers_mandate(client, elder, son):
    mandate = grant(elder, son)
    stranger = make_user(role="citizen", person=make_person(name="赵六"))
    client.force_login(stranger)

    assert son.person.masked_id not in client.get("/cases/mandates/").content.decode()
    assert client.post(f"/cases/mandates/{mandate.pk}/withdraw/").status_code == 404
    # the agent cannot withdraw it either: it is the principal's
    client.force_login(son)
    assert client.post(f"/cases/mandates/{mandate.pk}/withdraw/").status_code == 404
    mandate.refresh_from_db()
    assert mandate.status == "active"
    # and a stranger cannot apply under it
    client.force_login(stranger)
    assert client.get(f"/cases/apply/ANY/?for={mandate.pk}").status_code == 404


def test_mandate_pages_are_for_residents_only(client, elder):
    assert client.get("/cases/mandates/").status_code == 302  # to the login page
    client.force_login(make_user(role="org_agent"))
    for url in ("/cases/mandates/", "/cases/mandates/held/"):
        assert client.get(url).status_code == 403


def test_the_agent_applies_for_the_principal_from_their_list(client, city, elder, son):
    grant_reads(city.health, city)
    item = make_health_item(city)
    mandate = grant(elder, son, all_items=False, item_codes=[item.code], may_consent=True)
    client.force_login(son)

    held = client.get("/cases/mandates/held/").content.decode()
    assert "王奶奶" in held and f"/cases/apply/{item.code}/?for={mandate.pk}" in held

    form = client.get(f"/cases/apply/{item.code}/?for={mandate.pk}")
    page = form.content.decode()
    assert form.status_code == 200
    assert "on-behalf" in page and "王奶奶" in page
    key = re.search(r'name="idempotency_key" value="([0-9a-f]+)"', page).group(1)
    response = client.post(
        f"/cases/apply/{item.code}/?for={mandate.pk}",
        {"idempotency_key": key, "consents": ["marriage"]},
    )
    assert response.status_code == 302
    case = Case.objects.get()
    assert (case.applicant_person, case.submitted_by, case.submission.mandate) == (
        elder.person,
        son,
        mandate,
    )
    assert "王奶奶" in client.get("/cases/").content.decode()  # the agent's list says for whom
    client.force_login(elder)
    mine = client.get("/cases/").content.decode()
    assert case.number in mine and "王小明" in mine


def test_the_agent_cannot_apply_for_an_item_outside_the_mandate(client, city, elder, son):
    item = make_health_item(city)
    other = make_health_item(city, code="HEALTH-2")
    mandate = grant(elder, son, all_items=False, item_codes=[item.code])
    client.force_login(son)
    response = client.get(f"/cases/apply/{other.code}/?for={mandate.pk}")
    assert response.status_code == 403
    assert Submission.objects.count() == 0


def test_window_pages_need_verified_staff(client, elder):
    client.force_login(elder)
    assert client.get("/cases/window/").status_code in (302, 403)
    login_verified(client, make_user(role="staff"))
    assert client.get("/cases/window/").status_code == 200


def test_window_staff_find_record_and_apply(client, city, elder, son):
    grant_reads(city.health, city)
    item = make_health_item(city)
    clerk = make_user(role="staff", department=make_department(code="center", name="政务中心"))
    login_verified(client, clerk)

    wrong = client.post(
        "/cases/window/",
        {"step": "find", "find-resident_id": elder.person.resident_id, "find-name": "王爷爷"},
    )
    assert wrong.status_code == 422 and "person_unmatched" in wrong.content.decode()
    found = client.post(
        "/cases/window/",
        {"step": "find", "find-resident_id": elder.person.resident_id, "find-name": "王奶奶"},
    )
    assert found.status_code == 302
    page = client.get(found["Location"]).content.decode()
    assert "王奶奶" in page and elder.person.resident_id not in page
    token = re.search(r'name="t" value="([^"]+)"', page).group(1)

    recorded = client.post(
        "/cases/window/",
        {
            "step": "record",
            "t": token,
            "record-paper_reference": "WT-2026-7",
            "record-agent_resident_id": son.person.resident_id,
            "record-agent_name": son.person.name,
            "record-scope": "all",
            "record-valid_until": later(30).isoformat(),
        },
    )
    assert recorded.status_code == 302
    mandate = Mandate.objects.get()
    assert (mandate.principal, mandate.agent, mandate.paper_reference, mandate.created_by) == (
        elder.person,
        son.person,
        "WT-2026-7",
        clerk,
    )

    opened = client.post(
        "/cases/window/",
        {
            "step": "apply",
            "t": token,
            "apply-service": f"item:{item.code}",
            "apply-paper_reference": "授权委托书 2026-0042",
        },
    )
    assert opened.status_code == 302
    form_url = opened["Location"]
    page = client.get(form_url).content.decode()
    assert "王奶奶" in page and "授权委托书 2026-0042" in page
    key = re.search(r'name="idempotency_key" value="([0-9a-f]+)"', page).group(1)
    pdf = SimpleUploadedFile("m.pdf", PDF, content_type="application/pdf")
    response = client.post(form_url, {"idempotency_key": key, "file_marriage_certificate": pdf})
    assert response.status_code == 302 and response["Location"].startswith("/cases/window/?t=")
    submission = Submission.objects.get()
    assert (submission.applicant_person, submission.on_behalf_note, submission.mandate) == (
        elder.person,
        "授权委托书 2026-0042",
        None,
    )

    # a token altered or made for another staff member is refused
    other = make_user(role="staff")
    login_verified(client, other)
    assert client.get(form_url).status_code == 403
    assert client.get("/cases/window/?t=bogus").status_code == 403


@pytest.mark.django_db(transaction=True)
def test_a_withdrawal_waits_for_a_submission_under_the_mandate(city, elder, son):
    if connection.vendor == "sqlite":
        pytest.skip("SQLite serializes writers; the race needs PostgreSQL")
    item = make_health_item(city)
    mandate = grant(elder, son)
    done = threading.Event()

    def withdraw():
        try:
            mandates.mandate_withdraw(mandate=mandate, actor=elder)
            done.set()
        finally:
            connection.close()

    # Given a submission under the mandate in progress (it holds the mandate's row lock)
    with transaction.atomic():
        held = mandates.mandate_covering(
            principal=elder.person, agent=son.person, items=[item], lock=True
        )
        assert held == mandate
        worker = threading.Thread(target=withdraw)
        worker.start()
        # Then the withdrawal waits until the submission commits
        assert not done.wait(0.5)
    worker.join(10)
    assert done.is_set()
    mandate.refresh_from_db()
    assert mandate.status == "withdrawn"
