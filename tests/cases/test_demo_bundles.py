"""Every one-thing bundle (一件事) of the demo city works: its demo applicant (the citizen,
or the business agent for a business's bundle) uploads only what the form asks for and one
submission creates one case per item, each in its own department."""

import uuid

import pytest

from tests.cases.apply_factories import upload_dir, upload_pdf  # noqa: F401  (autouse fixture)
from tongban.cases import services
from tongban.cases.errors import CaseInputInvalid
from tongban.cases.models import Case
from tongban.catalog.models import Bundle
from tongban.people.models import User
from tongban.portal.demo import seed_demo_city

pytestmark = pytest.mark.django_db


def test_every_demo_bundle_is_applied_for_in_one_submission():
    seed_demo_city(residents=60, organizations=10)
    applicants = [User.objects.get(username="citizen"), User.objects.get(username="agent")]
    bundles = list(Bundle.objects.filter(is_active=True).order_by("code"))
    assert len(bundles) >= 5

    for bundle in bundles:
        prepared = None
        for actor in applicants:
            try:
                prepared = services.application_prepare(bundle=bundle, actor=actor)
            except CaseInputInvalid:
                continue  # the bundle is for the other kind of applicant
            break
        assert prepared is not None, bundle.code
        assert prepared.fetched_count > 0, bundle.code  # certificate-free where data exists
        files = {
            choice.key: [upload_pdf(actor, choice.key)]
            for choice in prepared.materials
            if choice.must_upload
        }
        submission = services.application_submit(
            bundle=bundle, actor=actor, uploads=files, idempotency_key=uuid.uuid4().hex
        )

        cases = list(submission.cases.all())
        assert sorted(c.item_id for c in cases) == sorted(i.pk for i in prepared.items)
        assert {c.department_id for c in cases} == {i.department_id for i in prepared.items}
        assert all(c.state in (Case.State.SUBMITTED, Case.State.COMPLETED) for c in cases)
