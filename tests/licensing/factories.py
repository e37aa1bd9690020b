"""A department with a seal and a granted staff member, and a residence-permit type."""

import datetime as dt
from dataclasses import dataclass

from django.utils import timezone

from tests.people.factories import make_department, make_person, make_user
from tongban.catalog.models import LicenseType
from tongban.licensing.models import License, Seal, SealGrant
from tongban.licensing.services import license_issue, seal_create, seal_grant_create
from tongban.people.models import Department, Person, User

RESIDENCE_SCHEMA = {
    "type": "object",
    "additionalProperties": False,
    "required": ["address", "since"],
    "properties": {
        "address": {"type": "string", "maxLength": 200, "title": "居住地址"},
        "since": {"type": "string", "format": "date", "title": "居住起始日期"},
        "endorsement": {"type": "string", "maxLength": 20, "title": "签注"},
    },
}


@dataclass
class Office:
    department: Department
    seal: Seal
    staff: User
    grant: SealGrant
    license_type: LicenseType


def make_license_type(department: Department, code: str = "LT-RESIDENCE") -> LicenseType:
    license_type = LicenseType.objects.create(
        code=code,
        name="居住证",
        name_en="Residence permit",
        kind="license",
        holder_kind="person",
        validity_years=1,
        standard_code=f"11100000000013338W{LicenseType.objects.count() + 1:03d}",
        surface_schema=RESIDENCE_SCHEMA,
        qr_fields=["since", "endorsement"],
        digest_fields=["address"],
        disclosable_fields=["address", "since", "endorsement"],
    )
    license_type.issuing_departments.add(department)
    return license_type


def make_office(*, algorithm: str = "ES256", code: str = "police") -> Office:
    department = make_department(code=code, name="演示市公安局")
    license_type = make_license_type(department, code=f"LT-RESIDENCE-{code}")
    seal = seal_create(
        department=department, name="电子证照专用章", algorithm=algorithm, actor="system"
    )
    staff = make_user(role="staff", department=department)
    grant = seal_grant_create(
        seal=seal,
        user=staff,
        license_types=[license_type],
        valid_until=timezone.now() + dt.timedelta(days=365),
        actor="system",
    )
    return Office(department, seal, staff, grant, license_type)


SURFACE = {"address": "演示市历下区龙奥北路8号", "since": "2024-05-06", "endorsement": "2025年度"}


def issue_residence_permit(office: Office, holder: Person | None = None) -> License:
    return license_issue(
        license_type=office.license_type,
        holder=holder or make_person(),
        surface=dict(SURFACE),
        actor=office.staff,
    )
