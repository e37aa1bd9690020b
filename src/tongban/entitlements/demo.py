"""Benefits without applying in the demo city 演示市: the sharing grants the granting
departments need, then every rule in force runs once over the seeded population (so the
residents aged 80 or older hold 高龄津贴, the babies 育儿补贴, the 低保 households their
renewal and the retirees their pension, each seeing why), and the pensions are verified
silently (静默认证): those with no recent activity are asked to confirm. A re-run grants,
asks and creates nothing new."""

from collections.abc import Callable
from typing import Any

from django.utils import timezone

from tongban.exchange.demo import DemoGrant, demo_grants_seed
from tongban.exchange.models import Purpose
from tongban.people.models import Department, Person, User

from .errors import DataNotGranted
from .models import Verification
from .rulebook import entitlement_rules_all
from .services import entitlements_run, grant_cases_open_all
from .verification import PENSION_RULE, verifications_sweep

# What the granting departments read of other departments' data (their own they read as is).
DEMO_GRANTS = (
    DemoGrant(
        "health",
        "population",
        ("birth_date", "division_code", "alive"),
        "《育儿补贴制度实施方案》（中共中央办公厅、国务院办公厅，2025年）",
        purpose=Purpose.ELIGIBILITY_REVIEW,
    ),
    DemoGrant(
        "civil_affairs",
        "tax",
        ("tax_type",),
        "《最低生活保障审核确认办法》（民发〔2021〕57号）第十条",
        purpose=Purpose.SOCIAL_ASSISTANCE,
    ),
    DemoGrant(
        "social_insurance",
        "population",
        ("alive",),
        "《中华人民共和国社会保险法》第四十九条；《社会保险经办条例》",
        purpose=Purpose.ELIGIBILITY_REVIEW,
    ),
    DemoGrant(
        "social_insurance",
        "medical_settlement",
        ("settled_on",),
        "《社会保险经办条例》（养老保险待遇领取资格认证）",
        purpose=Purpose.ELIGIBILITY_REVIEW,
    ),
    DemoGrant(
        "social_insurance",
        "transit_ride",
        ("ride_on",),
        "《社会保险经办条例》（养老保险待遇领取资格认证）",
        purpose=Purpose.ELIGIBILITY_REVIEW,
    ),
)


def entitlements_demo_seed(
    *, actor: Any, staff_for: Callable[[Department], User], approver: User | None
) -> dict[str, int]:
    """Grant, run the rules and open their grants' cases, verify the pensions. A seed
    without the demo's sharing grants (no data administrator to approve them) has no data
    to run a rule on, and that rule grants nothing."""
    created = {
        "benefit grants": demo_grants_seed(
            DEMO_GRANTS, staff_for=staff_for, approver=approver, note="演示免申即享授权"
        )
    }
    today = timezone.localdate()
    granted = 0
    for code in dict.fromkeys(r.code for r in entitlement_rules_all() if r.in_force(today)):
        try:
            granted += sum(o.run.granted for o in entitlements_run(actor=actor, rule=code))
        except DataNotGranted:
            continue
    created["benefits granted"] = granted
    created["cases of grants opened"] = grant_cases_open_all()  # as the worker would after
    try:
        sweep = verifications_sweep(actor=actor)
    except DataNotGranted:
        created["pensions asked to confirm"] = 0
    else:
        created["pensions asked to confirm"] = sweep.counts["asked"]
    return created


def pension_holder_asked() -> Person | None:
    """The first pension holder (by ID number) asked to confirm who has no login yet: the
    demo gives them one."""
    asked = (
        Verification.objects.filter(rule_code=PENSION_RULE, status=Verification.Status.ASKED)
        .exclude(person__accounts__isnull=False)
        .select_related("person")
        .order_by("person__resident_id")
        .first()
    )
    return asked.person if asked else None
