import datetime as dt

import pytest
from django.utils import timezone

from tests.people.factories import make_organization, make_person, make_user
from tongban.audit.models import AuditEntry
from tongban.core.errors import PermissionDeniedError
from tongban.licensing import status_list as codec
from tongban.licensing.identifiers import license_identifier_parse
from tongban.licensing.models import License, Seal
from tongban.licensing.services import (
    IllegalStatusChange,
    InvalidSurface,
    NoSealGrant,
    WrongHolderKind,
    license_canonical_bytes,
    license_issue,
    license_status_set,
    seal_signer,
)
from tongban.licensing.signers import private_key_unseal

from .factories import SURFACE, issue_residence_permit, make_office

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("algorithm", ["ES256", "EdDSA", "SM2SM3"])
def test_issue_signs_the_canonical_record_with_the_granted_seal(algorithm):
    # Given a department whose staff member holds a grant for its seal
    office = make_office(algorithm=algorithm)
    holder = make_person(name="王五")
    # When the staff member issues a residence permit
    license = issue_residence_permit(office, holder)
    # Then it has a valid GB/T 36904 identifier, a status index, and the seal's signature
    parsed = license_identifier_parse(license.identifier)
    assert parsed.type_code == office.license_type.standard_code
    assert parsed.issuer_credit_code == office.department.credit_code
    assert (license.version, license.status, license.grant) == (1, "valid", office.grant)
    assert license.valid_until == license.valid_from.replace(year=license.valid_from.year + 1)
    verifier = seal_signer(office.seal).public()
    assert verifier.verify(license_canonical_bytes(license), bytes(license.signature))
    # And the issuance is audited against the holder
    entry = AuditEntry.objects.get(action="license.issue")
    assert (entry.subject_type, entry.subject_id) == ("person", holder.resident_id)
    assert entry.after["seal"] == office.seal.key_id


def test_private_keys_are_stored_encrypted():
    office = make_office()
    seal = Seal.objects.get(pk=office.seal.pk)
    assert seal.private_key_sealed.startswith("v1:")
    assert len(private_key_unseal(seal.private_key_sealed)) == 32


def test_staff_without_a_grant_cannot_issue_and_nothing_is_written():
    office = make_office()
    other_staff = make_user(role="staff", department=office.department)
    before = AuditEntry.objects.count()
    with pytest.raises(NoSealGrant):
        license_issue(
            license_type=office.license_type,
            holder=make_person(),
            surface=dict(SURFACE),
            actor=other_staff,
        )
    assert License.objects.count() == 0
    assert AuditEntry.objects.count() == before + 1  # only the person made for the attempt


def test_expired_grant_cannot_issue():
    office = make_office()
    office.grant.valid_until = timezone.now() - dt.timedelta(seconds=1)
    office.grant.save()
    with pytest.raises(NoSealGrant):
        issue_residence_permit(office)


def test_surface_fields_are_checked_against_the_type_schema():
    office = make_office()
    with pytest.raises(InvalidSurface) as exc:
        license_issue(
            license_type=office.license_type,
            holder=make_person(),
            surface={"address": "x" * 201, "since": "not a date", "extra": 1},
            actor=office.staff,
        )
    fields = {e["field"] for e in exc.value.details["errors"]}
    assert fields == {"", "address", "since"}
    assert License.objects.count() == 0


def test_a_person_type_is_not_issued_to_an_organization():
    office = make_office()
    with pytest.raises(WrongHolderKind):
        license_issue(
            license_type=office.license_type,
            holder=make_organization(),
            surface=dict(SURFACE),
            actor=office.staff,
        )


def test_a_type_for_persons_and_organizations_is_issued_to_either():
    office = make_office()
    office.license_type.holder_kind = "both"
    office.license_type.save(update_fields=["holder_kind"])
    for holder in (make_person(), make_organization()):
        license = license_issue(
            license_type=office.license_type,
            holder=holder,
            surface=dict(SURFACE),
            actor=office.staff,
        )
        assert holder in (license.holder_person, license.holder_organization)


def test_status_changes_update_the_status_list_and_revocation_is_final():
    office = make_office()
    license = issue_residence_permit(office)

    def list_status() -> int:
        license.status_list.refresh_from_db()
        entries = codec.StatusList.from_compressed(bytes(license.status_list.statuses))
        return entries.get(license.status_index)

    license_status_set(license=license, status="suspended", reason="核查中", actor=office.staff)
    assert list_status() == codec.Status.SUSPENDED
    license_status_set(license=license, status="valid", reason="核查完毕", actor=office.staff)
    assert list_status() == codec.Status.VALID
    license_status_set(license=license, status="revoked", reason="已迁出", actor=office.staff)
    assert list_status() == codec.Status.INVALID
    with pytest.raises(IllegalStatusChange):
        license_status_set(license=license, status="valid", reason="误操作", actor=office.staff)
    license.refresh_from_db()
    assert (license.status, license.status_reason) == ("revoked", "已迁出")


def test_only_the_issuing_departments_staff_can_revoke():
    office = make_office()
    license = issue_residence_permit(office)
    outsider = make_office(code="market").staff
    with pytest.raises(PermissionDeniedError):
        license_status_set(license=license, status="revoked", reason="x", actor=outsider)
    license.refresh_from_db()
    assert license.status == "valid"


def test_status_indexes_are_distinct():
    office = make_office()
    licenses = [issue_residence_permit(office) for _ in range(20)]
    assert len({lic.status_index for lic in licenses}) == 20


def test_seal_rotation_keeps_old_licenses_verifiable_and_moves_the_grants():
    from tongban.licensing.selectors import license_offline_qr, license_verify
    from tongban.licensing.services import seal_rotate

    # Given a license signed by the department's seal
    office = make_office()
    license = issue_residence_permit(office)
    # When the seal is rotated
    new_seal = seal_rotate(seal=office.seal, actor="system")
    office.seal.refresh_from_db()
    # Then the old seal is retired, its grant moved, and new licenses use the new key
    assert office.seal.retired_at is not None and new_seal.key_id != office.seal.key_id
    assert new_seal.grants.get().user == office.staff
    assert issue_residence_permit(office).seal == new_seal
    # And the old license (as a new request loads it) still shows a code that verifies
    license = License.objects.select_related("seal").get(pk=license.pk)
    assert license_verify(text=license_offline_qr(license=license)).valid
    verifier = seal_signer(office.seal).public()
    assert verifier.verify(license_canonical_bytes(license), bytes(license.signature))
