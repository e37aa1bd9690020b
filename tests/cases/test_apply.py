"""Applying online: the form says where each material comes from, consent is asked once,
submission reads the data through the exchange (audited under the case number), a
bundle creates one case per item all or none, retries return the first submission, and
window staff apply for someone with a recorded authorization."""

import threading
import uuid

import pytest
from django.db import connection
from django.utils import timezone

from tests.cases.apply_factories import (
    give_rows,
    grant_reads,
    make_bundle,
    make_city,
    make_health_item,
    upload_dir,  # noqa: F401  (autouse fixture)
    upload_pdf,
)
from tests.licensing.factories import issue_residence_permit
from tests.people.factories import make_department, make_person, make_user
from tongban.audit.models import AuditEntry
from tongban.cases import rules, services
from tongban.cases.demo import DEMO_CASES
from tongban.cases.models import Case, Submission, Upload
from tongban.catalog.models import ServiceItem
from tongban.core.errors import TongbanError
from tongban.exchange.errors import GrantRevoked
from tongban.licensing import selectors as license_selectors
from tongban.licensing.models import Consent
from tongban.people.models import User
from tongban.portal.demo import seed_demo_city

pytestmark = pytest.mark.django_db


@pytest.fixture
def city():
    return make_city()


@pytest.fixture
def citizen(city):
    """A citizen holding a residence permit, with rows in both datasets."""
    user = make_user(role="citizen", person=make_person(name="王小明"))
    issue_residence_permit(city.police, holder=user.person)
    give_rows(city, user.person)
    return user


def key() -> str:
    return uuid.uuid4().hex


def caught(call) -> TongbanError:
    with pytest.raises(TongbanError) as raised:
        call()
    return raised.value


def snapshot() -> tuple[int, int, int, int]:
    return (
        Submission.objects.count(),
        Case.objects.count(),
        Consent.objects.count(),
        AuditEntry.objects.count(),
    )


def test_an_applicant_holding_everything_uploads_nothing(city, citizen):
    # Given an item whose materials the citizen's license and data satisfy
    grant_reads(city.health, city)
    item = make_health_item(city)

    # When the form is prepared
    form = services.application_prepare(item=item, actor=citizen)

    # Then nothing is to upload, and consent is asked for the marriage data only
    assert [(c.key, c.source, c.needs_consent, c.must_upload) for c in form.materials] == [
        ("residence_permit", "license", False, False),
        ("household", "dataset", False, False),
        ("marriage_certificate", "dataset", True, False),
    ]
    assert [(c.dataset.code, [d.code for d in c.departments]) for c in form.consents] == [
        ("marriage", ["health"])
    ]
    assert (form.fetched_count, form.upload_count) == (3, 0)

    # When they submit with that consent and no file
    submission = services.application_submit(
        item=item, actor=citizen, consent_datasets=["marriage"], idempotency_key=key()
    )

    # Then one case fetched all three materials, reading the data through the exchange
    case = submission.cases.get()
    assert (case.materials_fetched, case.materials_uploaded) == (3, 0)
    assert [m["source"] for m in case.materials] == ["license", "dataset", "dataset"]
    reads = AuditEntry.objects.filter(action="exchange.query").order_by("seq")
    assert [(e.actor, e.after["dataset"]) for e in reads] == [
        (f"case:{case.number}", "population"),
        (f"case:{case.number}", "marriage"),
    ]
    household = case.materials[1]
    assert household["audit_seq"] == reads[0].seq
    assert household["grant"] == int(reads[0].object_id)
    assert household["rows"][0]["address"] == "演示市历下区龙奥北路1号6号楼1单元202室"
    assert case.materials[2]["rows"][0]["event"] == "结婚"
    consent = Consent.objects.get()
    assert (consent.dataset_code, consent.grantee_department, consent.holder_person) == (
        "marriage",
        city.health,
        citizen.person,
    )


def test_one_missing_a_license_is_asked_for_exactly_that_material(city):
    # Given a citizen with data but without the residence permit
    user = make_user(role="citizen")
    give_rows(city, user.person)
    grant_reads(city.health, city)
    item = make_health_item(city)

    form = services.application_prepare(item=item, actor=user)
    assert [c.key for c in form.materials if c.must_upload] == ["residence_permit"]

    # When they submit without it, nothing is created and the error names it
    before = snapshot()
    error = caught(
        lambda: services.application_submit(
            item=item, actor=user, consent_datasets=["marriage"], idempotency_key=key()
        )
    )
    assert (error.code, error.status) == ("materials_missing", 422)
    assert error.details == {
        "materials": [{"key": "residence_permit", "name": "居住证", "items": ["HEALTH-1"]}]
    }
    assert snapshot() == before

    # When they upload it, the application goes through with one upload
    upload = upload_pdf(user, "residence_permit")
    submission = services.application_submit(
        item=item,
        actor=user,
        uploads={"residence_permit": [upload.pk]},
        consent_datasets=["marriage"],
        idempotency_key=key(),
    )
    case = submission.cases.get()
    assert (case.materials_fetched, case.materials_uploaded) == (2, 1)
    assert case.materials[0] | {} == {
        "key": "residence_permit",
        "name": "居住证",
        "required": True,
        "source": "upload",
        "upload": upload.pk,
        "uploads": [upload.pk],
    }
    upload.refresh_from_db()
    assert (upload.submission, upload.case) == (submission, case)


def test_refusing_consent_means_uploading_instead(city, citizen):
    grant_reads(city.health, city)
    item = make_health_item(city)
    before = snapshot()

    error = caught(
        lambda: services.application_submit(item=item, actor=citizen, idempotency_key=key())
    )
    assert error.details["materials"] == [
        {"key": "marriage_certificate", "name": "结婚证", "items": ["HEALTH-1"]}
    ]
    assert snapshot() == before

    upload = upload_pdf(citizen, "marriage_certificate")
    submission = services.application_submit(
        item=item,
        actor=citizen,
        uploads={"marriage_certificate": [upload]},
        idempotency_key=key(),
    )
    case = submission.cases.get()
    assert [m["source"] for m in case.materials] == ["license", "dataset", "upload"]
    assert not Consent.objects.exists()
    assert AuditEntry.objects.filter(action="exchange.query").count() == 1


def test_bad_uploads_and_consents_are_refused_without_change(city, citizen):
    grant_reads(city.health, city)
    item = make_health_item(city)
    other = make_user(role="citizen")
    theirs = upload_pdf(other, "marriage_certificate")
    wrong_key = upload_pdf(citizen, "household")
    before = snapshot()
    for uploads, consents, code in [
        ({"marriage_certificate": [theirs.pk]}, [], "upload_not_found"),
        ({"marriage_certificate": [wrong_key.pk]}, [], "upload_not_found"),
        ({"marriage_certificate": ["1"]}, [], "upload_not_found"),
        ({"birth_certificate": [wrong_key.pk]}, [], "upload_unexpected"),
        ({}, ["population"], "consent_unexpected"),
    ]:
        error = caught(
            lambda u=uploads, c=consents: services.application_submit(
                item=item, actor=citizen, uploads=u, consent_datasets=c, idempotency_key=key()
            )
        )
        assert error.code == code
    assert snapshot() == before


def test_consent_is_asked_once_for_a_bundle_and_granted_per_department(city, citizen):
    # Given a bundle of two items of two departments, both reading the marriage data
    for department in (city.health, city.education):
        grant_reads(department, city)
    first = make_health_item(city)
    second = make_health_item(city, code="EDU-1", department=city.education)
    bundle = make_bundle([first, second])

    # Then the form asks for the marriage data once, naming both departments
    form = services.application_prepare(bundle=bundle, actor=citizen)
    assert [(c.dataset.code, [d.code for d in c.departments]) for c in form.consents] == [
        ("marriage", ["health", "education"])
    ]
    assert [c.key for c in form.materials] == [
        "residence_permit",
        "household",
        "marriage_certificate",
    ]

    # When submitted, one consent per department is granted, and each case is routed
    submission = services.application_submit(
        bundle=bundle, actor=citizen, consent_datasets=["marriage"], idempotency_key=key()
    )
    assert sorted(Consent.objects.values_list("grantee_department__code", flat=True)) == [
        "education",
        "health",
    ]
    assert sorted(submission.cases.values_list("department__code", flat=True)) == [
        "education",
        "health",
    ]
    assert submission.bundle == bundle

    # and a second application asks for no consent again
    again = services.application_prepare(bundle=bundle, actor=citizen)
    assert again.consents == []


def test_a_bundle_is_all_or_none_when_one_items_read_fails(city, citizen, monkeypatch):
    for department in (city.health, city.education):
        grant_reads(department, city)
    bundle = make_bundle(
        [make_health_item(city), make_health_item(city, code="EDU-1", department=city.education)]
    )
    from tongban.cases import resolution

    real = resolution.data_query

    def failing_for_education(*, caller, **kwargs):
        if caller.department == city.education:
            raise GrantRevoked()
        return real(caller=caller, **kwargs)

    monkeypatch.setattr(resolution, "data_query", failing_for_education)
    before = snapshot()

    error = caught(
        lambda: services.application_submit(
            bundle=bundle, actor=citizen, consent_datasets=["marriage"], idempotency_key=key()
        )
    )

    assert error.code == "grant_revoked"
    assert snapshot() == before


def test_a_retried_bundle_returns_the_first_submission_and_reads_nothing(city, citizen):
    for department in (city.health, city.education):
        grant_reads(department, city)
    bundle = make_bundle(
        [make_health_item(city), make_health_item(city, code="EDU-1", department=city.education)]
    )
    same = key()
    first = services.application_submit(
        bundle=bundle, actor=citizen, consent_datasets=["marriage"], idempotency_key=same
    )
    after_first = snapshot()

    again = services.application_submit(
        bundle=bundle, actor=citizen, consent_datasets=["marriage"], idempotency_key=same
    )

    assert again == first
    assert snapshot() == after_first == (1, 2, 2, after_first[3])


def test_window_staff_apply_for_someone_with_a_recorded_authorization(city):
    # Given an elderly person without an account, and window staff of the service centre
    elder = make_person(name="王奶奶")
    give_rows(city, elder)
    issue_residence_permit(city.police, holder=elder)
    grant_reads(city.health, city)
    item = make_health_item(city)
    helper = make_user(role="staff", department=make_department(code="center", name="政务中心"))

    # Then the form cannot ask the staff member to consent for her: that data is uploaded
    form = services.application_prepare(item=item, actor=helper, on_behalf=elder)
    assert [(c.key, c.source) for c in form.materials] == [
        ("residence_permit", "license"),
        ("household", "dataset"),
        ("marriage_certificate", "upload"),
    ]
    assert form.consents == [] and form.on_behalf

    # and the authorization must be recorded
    upload = upload_pdf(helper, "marriage_certificate")
    error = caught(
        lambda: services.application_submit(
            item=item,
            actor=helper,
            on_behalf=elder,
            uploads={"marriage_certificate": [upload.pk]},
            idempotency_key=key(),
        )
    )
    assert (error.code, error.details) == ("case_input_invalid", {"field": "on_behalf_note"})

    submission = services.application_submit(
        item=item,
        actor=helper,
        on_behalf=elder,
        on_behalf_note="授权委托书 2026-0042",
        uploads={"marriage_certificate": [upload.pk]},
        idempotency_key=key(),
    )
    assert (submission.applicant_person, submission.submitted_by) == (elder, helper)
    assert submission.on_behalf_note == "授权委托书 2026-0042"
    entry = AuditEntry.objects.get(action="submission.on_behalf")
    assert (entry.actor, entry.subject_id, entry.after) == (
        f"user:{helper.pk}:{helper.username}",
        elder.resident_id,
        {"authorization": "授权委托书 2026-0042"},
    )


def test_only_window_staff_or_a_mandated_agent_apply_on_behalf(city, citizen):
    item = make_health_item(city)
    error = caught(
        lambda: services.application_prepare(item=item, actor=citizen, on_behalf=make_person())
    )
    assert (error.code, error.status) == ("mandate_not_in_force", 403)
    error = caught(lambda: services.application_prepare(actor=citizen))
    assert error.code == "case_input_invalid"


def test_uploads_stay_unattached_when_a_submission_fails(city):
    user = make_user(role="citizen")
    item = make_health_item(city)
    upload = upload_pdf(user, "residence_permit")
    caught(
        lambda: services.application_submit(
            item=item,
            actor=user,
            uploads={"residence_permit": [upload.pk]},
            idempotency_key=key(),
        )
    )
    assert Upload.objects.get(pk=upload.pk).submission is None


def test_the_demo_city_applies_online_in_every_state_and_a_rerun_adds_nothing():
    # Given the seeded demo city
    report = seed_demo_city(residents=60, organizations=10)
    assert report.created["demo cases"] == len(DEMO_CASES)
    # and the demo citizen applied for an elderly resident under her recorded mandate
    assert report.created["demo mandates"] == 1
    under_mandate = Submission.objects.get(idempotency_key="demo-case-mandate-residence")
    mandate = under_mandate.mandate
    assert (mandate.agent, mandate.principal) == (
        User.objects.get(username="citizen").person,
        under_mandate.applicant_person,
    )
    assert mandate.paper_reference and mandate.principal.birth_date.year <= (
        timezone.localdate().year - 80
    )

    # Then at least ten items are fully online for the demo citizen
    citizen = User.objects.get(username="citizen")
    fully_online = [
        item.code
        for item in ServiceItem.objects.filter(is_active=True, audience__in=["person", "both"])
        if services.application_prepare(item=item, actor=citizen).upload_count == 0
    ]
    assert len(fully_online) >= 10
    # and at least five of the catalog's items have instant-approval rules in force
    today = timezone.localdate()
    ruled = [i for i in ServiceItem.objects.all() if rules.rule_in_force(i.code, on=today)]
    assert len(ruled) >= 5

    # and there are demo cases in every state, the instant ones with licenses that verify
    assert set(Case.objects.values_list("state", flat=True)) == set(Case.State.values)
    approved = Case.objects.filter(rule_report__outcome="approved")
    assert approved.count() >= 5
    for case in approved.exclude(result_license=None):
        license = case.result_license
        assert license.grant.automated
        verified = license_selectors.license_verify(
            text=license_selectors.license_offline_qr(license=license)
        )
        assert verified.valid, verified.reason
    assert Case.objects.filter(rule_report__outcome="to_staff").exists()
    assert (
        Case.objects.filter(submission__bundle__code="marriage")
        .values("department")
        .distinct()
        .count()
        >= 3
    )

    # and a second run creates nothing
    again = seed_demo_city(residents=60, organizations=10)
    assert (again.created["demo cases"], again.created["case grants"]) == (0, 0)
    assert again.created["demo mandates"] == 0
    assert again.created["rules signers"] == 0


def test_a_supplement_is_answered_with_the_applicants_own_upload(city):
    user = make_user(role="citizen")
    give_rows(city, user.person)
    grant_reads(city.health, city)
    item = make_health_item(city)
    permit = upload_pdf(user, "residence_permit")
    case = services.application_submit(
        item=item,
        actor=user,
        uploads={"residence_permit": [permit.pk]},
        consent_datasets=["marriage"],
        idempotency_key=key(),
    ).cases.get()
    staff = make_user(role="staff", department=city.health)
    services.case_accept(case=case, actor=staff)
    services.case_supplement_request(case=case, actor=staff, note="请补充清晰的居住证")
    stranger_file = upload_pdf(make_user(role="citizen"), "residence_permit")
    for answer, code in [
        ({"key": "residence_permit", "upload": stranger_file.pk}, "upload_not_found"),
        ({"key": "residence_permit", "upload": permit.pk}, "upload_not_found"),  # attached
        ({"key": "birth_certificate", "upload": permit.pk}, "material_unknown"),
        ({"key": "residence_permit", "source": "license", "license": "forged"}, "upload_not_found"),
    ]:
        error = caught(
            lambda a=answer: services.case_supplement_answer(case=case, actor=user, materials=[a])
        )
        assert error.code == code
    assert Case.objects.get(pk=case.pk).state == Case.State.SUPPLEMENT_REQUESTED

    clearer = upload_pdf(user, "residence_permit")
    case = services.case_supplement_answer(
        case=case,
        actor=user,
        materials=[{"key": "residence_permit", "source": "license", "upload": clearer.pk}],
    )

    assert case.materials[0] == {
        "key": "residence_permit",
        "name": "居住证",
        "required": True,
        "source": "upload",
        "upload": clearer.pk,
        "uploads": [clearer.pk],
    }
    assert (case.materials_fetched, case.materials_uploaded) == (2, 1)
    clearer.refresh_from_db()
    assert (clearer.case, clearer.submission) == (case, case.submission)


@pytest.mark.django_db(transaction=True)
def test_a_bundle_retried_concurrently_makes_one_submission(city, citizen):
    if connection.vendor == "sqlite":
        pytest.skip("SQLite serializes writers; the race needs PostgreSQL")
    for department in (city.health, city.education):
        grant_reads(department, city)
    bundle = make_bundle(
        [make_health_item(city), make_health_item(city, code="EDU-1", department=city.education)]
    )
    same = key()
    results = []
    barrier = threading.Barrier(4)

    def submit():
        barrier.wait()
        try:
            results.append(
                services.application_submit(
                    bundle=bundle,
                    actor=citizen,
                    consent_datasets=["marriage"],
                    idempotency_key=same,
                ).pk
            )
        finally:
            connection.close()

    threads = [threading.Thread(target=submit) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(results) == 4 and len(set(results)) == 1
    assert (Submission.objects.count(), Case.objects.count(), Consent.objects.count()) == (1, 2, 2)
    assert AuditEntry.objects.filter(action="exchange.query").count() == 4
