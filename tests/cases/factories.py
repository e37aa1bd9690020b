"""Service items that yield a license, and submitted cases, for tests of applications."""

import uuid
from typing import Any

from tests.licensing.factories import SURFACE, Office
from tests.people.factories import make_person, make_user
from tongban.cases.models import Case
from tongban.cases.services import submission_create
from tongban.catalog.models import ServiceItem
from tongban.people.models import Person, User


def make_item(office: Office, *, code: str = "ITEM-1", days: int = 5, **fields: Any) -> ServiceItem:
    """An item of the office's department whose approval yields its license type."""
    return ServiceItem.objects.create(
        **{
            "code": code,
            "basic_code": "000120100000",
            "name": "居住证办理",
            "summary": "办理居住证",
            "item_type": "public_service",
            "department": office.department,
            "audience": "person",
            "conditions": "在本市居住半年以上",
            "legal_basis": "《居住证暂行条例》",
            "legal_limit_days": max(days, 15),
            "promised_limit_days": days,
            "handling_kind": "promised",
            "online_depth": 4,
            "cross_region": "local",
            "result_license_type": office.license_type,
        }
        | fields
    )


def make_case(
    item: ServiceItem, *, applicant: Person | None = None, actor: User | None = None, **kw: Any
) -> Case:
    applicant = applicant or make_person()
    actor = actor or make_user(role="citizen", person=applicant)
    submission, _created = submission_create(
        items=[item],
        applicant=applicant,
        actor=actor,
        idempotency_key=uuid.uuid4().hex,
        forms={item.code: {"surface": dict(SURFACE)}},
        **kw,
    )
    return submission.cases.get()
