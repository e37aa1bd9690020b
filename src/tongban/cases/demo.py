"""Applications in the demo city 演示市: the sharing grants the handling departments need so
materials are fetched instead of uploaded, automated seal grants for the items the rules
decide at once (秒批), and cases in every state for the demo citizen and the demo agent —
all made through the same services as real applications, so they are audited like them.
An elderly resident has authorized the demo citizen (委托代办, a paper form recorded at the
service centre's window), and the citizen has applied for her once under it.

Idempotent: each demo case has a fixed idempotency key, and one that exists is left alone."""

import datetime as dt
import io
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from django.db import transaction
from django.db.models import Q
from django.utils import timezone
from fpdf import FPDF

from tongban.catalog.models import Bundle, ServiceItem
from tongban.exchange.demo import DemoGrant, demo_grants_seed
from tongban.exchange.proofs import automated_grant, automated_grant_ensure
from tongban.licensing.models import License
from tongban.people.models import Department, Person, User

from . import mandates, services
from .models import Case, Submission
from .rules import rules_all
from .uploads import upload_store

RULES_SIGNER_SUFFIX = "-rules-signer"


# What the handling departments read to fetch materials and to check their rules.
DEMO_GRANTS = (
    DemoGrant(
        "social_insurance",
        "population",
        ("name", "sex", "birth_date", "address"),
        "《社会保障卡管理办法》第十条",
    ),
    DemoGrant(
        "civil_affairs",
        "population",
        ("birth_date", "division_code", "alive"),
        "《中华人民共和国老年人权益保障法》第三十三条",
    ),
    DemoGrant(
        "hrss",
        "population",
        ("birth_date", "alive"),
        "《就业服务与就业管理规定》第六十二条",
    ),
    DemoGrant(
        "medical_security",
        "population",
        ("division_code", "alive"),
        "《中华人民共和国社会保险法》第二十五条",
    ),
)

# Items (by implementation code) the demo cases apply for.
BIRTH_REGISTRATION = "11370100MB285187XL-001119104000-01"  # 生育登记
VACCINATION_CHECK = "11370100MB285187XL-001119103000-01"  # 入托入学预防接种证查验
PREMARITAL_CHECK = "11370100MB285187XL-001119105000-01"  # 免费婚前孕前健康检查
HOUSEHOLD_MOVE = "11370100004188063L-000706101000-03"  # 户口迁移（迁入登记）
NEWBORN_MEDICAL = "11370100MB2854544Q-001125101000-02"  # 新生儿城乡居民医保参保登记
SCHOOL_ENROLMENT = "11370102004221396G-001105101000-01"  # 义务教育阶段新生入学登记
NEWBORN_SSCARD = "11370100MB2852434K-001109110000-02"  # 新生儿社会保障卡申领
RESIDENCE_PROOF = "11370100004188063L-001106104000-01"  # 居住证明开具 (秒批)
MARRIAGE_RECORD = "11370100004187917P-001107102000-01"  # 婚姻登记记录证明出具 (秒批)
EMPLOYMENT = "11370100MB2852194Q-001109202000-01"  # 就业登记 (秒批)
ELDER_ALLOWANCE = "11370100004187917P-000507103000-01"  # 高龄津贴申领 (秒批)
COMPANY_CHANGE = "11370100MB28510281-000120102000-01"  # 企业变更登记
FOOD_LICENSE = "11370100MB28510281-000120107000-01"  # 食品经营许可
SEAL_FILING = "11370100004188063L-001206120000-01"  # 公章刻制备案


@dataclass(frozen=True)
class DemoCase:
    """One demo application and the steps taken on it after submission."""

    key: str
    # "citizen", "agent", or "window" (staff applying for `for_person`); the citizen applies
    # for `for_person` under the mandate that person gave them.
    applicant: str
    item: str = ""
    bundle: str = ""
    steps: tuple[str, ...] = ()
    form: dict[str, Any] = field(default_factory=dict)
    for_person: str = ""  # "elder" (80 or older) or "near_elder" (79)


DEMO_CASES = (
    DemoCase("demo-case-submitted", "citizen", BIRTH_REGISTRATION),
    DemoCase("demo-case-accepted", "citizen", VACCINATION_CHECK, steps=("accept",)),
    DemoCase("demo-case-in-review", "citizen", PREMARITAL_CHECK, steps=("accept", "review")),
    DemoCase(
        "demo-case-supplement",
        "citizen",
        HOUSEHOLD_MOVE,
        steps=("accept", "review", "supplement_request"),
    ),
    DemoCase(
        "demo-case-decided", "citizen", NEWBORN_MEDICAL, steps=("accept", "review", "approve")
    ),
    DemoCase(
        "demo-case-completed",
        "citizen",
        SCHOOL_ENROLMENT,
        steps=("accept", "review", "approve", "complete", "evaluate"),
    ),
    DemoCase("demo-case-not-accepted", "citizen", NEWBORN_SSCARD, steps=("not_accept",)),
    DemoCase("demo-case-withdrawn", "citizen", BIRTH_REGISTRATION, steps=("withdraw",)),
    DemoCase(
        "demo-case-instant-residence",
        "citizen",
        RESIDENCE_PROOF,
        form={"purpose": "办理子女入学"},
    ),
    DemoCase(
        "demo-case-instant-marriage-record",
        "citizen",
        MARRIAGE_RECORD,
        form={"purpose": "办理房屋贷款"},
    ),
    DemoCase("demo-case-instant-employment", "citizen", EMPLOYMENT),
    DemoCase("demo-case-bundle-marriage", "citizen", bundle="marriage"),
    DemoCase("demo-case-agent-change", "agent", COMPANY_CHANGE, steps=("accept", "review")),
    DemoCase("demo-case-agent-food", "agent", FOOD_LICENSE),
    DemoCase(
        "demo-case-agent-seal",
        "agent",
        SEAL_FILING,
        steps=("accept", "review", "approve", "complete"),
    ),
    DemoCase("demo-case-window-elder", "window", ELDER_ALLOWANCE, for_person="elder"),
    DemoCase("demo-case-window-near-elder", "window", ELDER_ALLOWANCE, for_person="near_elder"),
    DemoCase(
        "demo-case-mandate-residence",
        "citizen",
        RESIDENCE_PROOF,
        form={"purpose": "办理养老金资格认证"},
        for_person="elder",
    ),
)
MANDATE_PAPER_REFERENCE = "演示市政务服务中心授权委托书 2026-0001"
MANDATE_DAYS = 365

STAFF_NOTES = {
    "supplement_request": "请补充迁入地合法稳定住所证明（租赁合同或房屋产权证明）。",
    "not_accept": "新生儿尚未办理出生登记，请先办理户口登记（出生登记）后再申请。",
}


def cases_demo_seed(
    *, actor: str, staff_for: Callable[[Department], User], approver: User | None
) -> dict[str, int]:
    """Seed what applications need in the demo city; returns what was created, by kind.
    `staff_for` gives a staff account of a department (its demo clerk); `approver` is the
    data administrator who approves the grants (none: no grants, no demo cases)."""
    created = {
        "case grants": demo_grants_seed(
            DEMO_GRANTS, staff_for=staff_for, approver=approver, note="演示免证办授权"
        ),
        "rules signers": _rules_signers_seed(actor=actor),
    }
    created["demo mandates"] = _mandates_seed(staff_for=staff_for) if approver else 0
    created["demo cases"] = _cases_seed(staff_for=staff_for) if approver else 0
    return created


def _mandates_seed(*, staff_for: Callable[[Department], User]) -> int:
    """The elderly resident's paper authorization for the demo citizen, recorded at the
    window: every service, data reads included, for a year (renewed once it lapses)."""
    people = _people(staff_for)
    elder = people.persons.get("elder")
    citizen = people.citizen.person if people.citizen else None
    if people.window is None or elder is None or citizen is None:
        return 0
    if mandates.mandate_covering(principal=elder, agent=citizen, items=[]) is not None:
        return 0
    mandates.mandate_record_by_staff(
        actor=people.window,
        principal=elder,
        agent_resident_id=citizen.resident_id,
        agent_name=citizen.name,
        paper_reference=MANDATE_PAPER_REFERENCE,
        all_items=True,
        may_consent=True,
        valid_until=timezone.localdate() + dt.timedelta(days=MANDATE_DAYS),
    )
    return 1


def _rules_signers_seed(*, actor: str) -> int:
    """An automated seal grant for every item the rules may approve with a license."""
    created = 0
    codes = [rule.item for rule in rules_all()]
    items = ServiceItem.objects.filter(code__in=codes, result_license_type__isnull=False)
    for item in items.select_related("department", "result_license_type"):
        license_type = item.result_license_type
        if license_type is None or automated_grant(license_type, item.department) is not None:
            continue
        with transaction.atomic():
            grant = automated_grant_ensure(
                department=item.department,
                license_types=[license_type],
                actor=actor,
                suffix=RULES_SIGNER_SUFFIX,
            )
        created += grant is not None
    return created


def _demo_pdf(title: str) -> bytes:
    """A one-page PDF standing in for a scanned paper material."""
    pdf = FPDF()
    pdf.add_page()
    pdf.set_font("Helvetica", size=14)
    pdf.cell(0, 10, f"Tongban demo material: {title}")
    return bytes(pdf.output())


@dataclass
class _People:
    citizen: User | None
    agent: User | None
    window: User | None
    persons: dict[str, Person]


def _people(staff_for: Callable[[Department], User]) -> _People:
    citizen = User.objects.filter(username="citizen").select_related("person").first()
    agent = User.objects.filter(username="agent").select_related("organization").first()
    center = Department.objects.filter(code="service_center").first()
    today = timezone.localdate()
    exclude = [citizen.person_id] if citizen and citizen.person_id else []
    eighty = today.replace(year=today.year - 80)
    elder = _resident(Q(birth_date__lte=eighty), exclude)
    near = _resident(
        Q(birth_date__gt=eighty, birth_date__lte=today.replace(year=today.year - 79)), exclude
    )
    return _People(
        citizen=citizen,
        agent=agent,
        window=staff_for(center) if center else None,
        persons={k: p for k, p in (("elder", elder), ("near_elder", near)) if p is not None},
    )


def _resident(ages: Q, exclude: list[int]) -> Person | None:
    """A resident of those ages, preferring one whose social security card is in their
    wallet (the allowance is paid to it), in a stable order."""
    people = Person.objects.filter(ages).exclude(pk__in=exclude).order_by("resident_id")
    with_card = people.filter(
        licenses__license_type__code="LT-SSCARD", licenses__status=License.Status.VALID
    )
    return with_card.first() or people.first()


def _cases_seed(*, staff_for: Callable[[Department], User]) -> int:
    people = _people(staff_for)
    created = 0
    for spec in DEMO_CASES:
        actor = {"citizen": people.citizen, "agent": people.agent, "window": people.window}[
            spec.applicant
        ]
        on_behalf = people.persons.get(spec.for_person) if spec.for_person else None
        if actor is None or (spec.for_person and on_behalf is None):
            continue
        if Submission.objects.filter(submitted_by=actor, idempotency_key=spec.key).exists():
            continue
        item = (
            ServiceItem.objects.filter(code=spec.item, is_active=True).first()
            if spec.item
            else None
        )
        bundle = (
            Bundle.objects.filter(code=spec.bundle, is_active=True).first() if spec.bundle else None
        )
        if item is None and bundle is None:
            continue
        with transaction.atomic():
            submission = _apply(spec, actor=actor, item=item, bundle=bundle, on_behalf=on_behalf)
            for case in submission.cases.select_related("department", "item"):
                _steps(case, spec.steps, applicant=actor, staff_for=staff_for)
        created += 1
    return created


def _apply(
    spec: DemoCase,
    *,
    actor: User,
    item: ServiceItem | None,
    bundle: Bundle | None,
    on_behalf: Person | None,
) -> Submission:
    """Apply as a person would: upload a file for what cannot be fetched, and consent to
    the data the form asks for."""
    form = services.application_prepare(item=item, bundle=bundle, actor=actor, on_behalf=on_behalf)
    uploads = {
        choice.key: [
            upload_store(
                file=io.BytesIO(_demo_pdf(choice.key)),
                name=f"{choice.material.name}.pdf",
                material_key=choice.key,
                actor=actor,
            )
        ]
        for choice in form.materials
        if choice.must_upload
    }
    return services.application_submit(
        item=item,
        bundle=bundle,
        actor=actor,
        on_behalf=on_behalf,
        # Window staff record the paper form shown; the citizen applies under the mandate.
        on_behalf_note="授权委托书（演示）" if on_behalf and actor.role == User.Role.STAFF else "",
        form=spec.form,
        uploads=uploads,
        consent_datasets=[c.dataset.code for c in form.consents],
        idempotency_key=spec.key,
    )


def _steps(
    case: Case, steps: tuple[str, ...], *, applicant: User, staff_for: Callable[[Department], User]
) -> None:
    staff = staff_for(case.department)
    for step in steps:
        if step == "approve":
            case = services.case_decide(case=case, actor=staff, approve=True, reasons="")
        elif step == "withdraw":
            case = services.case_withdraw(case=case, actor=applicant, note="信息填写有误，重新申请")
        elif step == "evaluate":
            services.evaluation_create(
                case=case, actor=applicant, level=5, comment="不用跑腿，很方便"
            )
        elif step in STAFF_NOTES:
            call = getattr(services, f"case_{step}")
            case = call(case=case, actor=staff, note=STAFF_NOTES[step])
        else:
            case = getattr(services, f"case_{step}")(case=case, actor=staff)
