"""A small catalog built through `catalog_load`, the same path the demo city uses."""

import copy
from typing import Any

from tongban.catalog.services import catalog_load
from tongban.people.models import Department
from tongban.portal.demo import credit_code


def make_department(
    code: str = "market", name: str = "演示市市场监督管理局", n: int = 1
) -> Department:
    return Department.objects.create(
        code=code,
        name=name,
        name_en=f"{code} bureau",
        credit_code=credit_code("11", "370100", f"{n:08d}"),
        region_code="370100",
    )


def item_row(code: str, name: str, **overrides: Any) -> dict[str, Any]:
    row: dict[str, Any] = {
        "code": code,
        "basic_code": "000120100000",
        "name": name,
        "name_en": f"{code} in English",
        "summary": f"{name}的说明",
        "summary_en": "What it is",
        "item_type": "licensing",
        "department": "market",
        "audience": "person",
        "conditions": "年满18周岁",
        "conditions_en": "Aged 18 or over",
        "legal_basis": "《中华人民共和国行政许可法》",
        "legal_limit_days": 20,
        "promised_limit_days": 5,
        "handling_kind": "promised",
        "is_free": True,
        "fee": "",
        "online_depth": 4,
        "cross_region": "local",
        "visits_required": 0,
        "offline_locations": [],
        "faq": [],
        "keywords": "",
        "steps": [{"name": "申请", "name_en": "Apply"}, {"name": "审查", "name_en": "Review"}],
        "result_license_type": None,
        "life_events": ["birth"],
        "materials": [
            {
                "key": "resident_id_card",
                "name": "居民身份证",
                "name_en": "Resident ID card",
                "license_types": ["LT-ID"],
                "dataset_codes": ["population"],
            },
            {"key": "application_form", "name": "申请表", "name_en": "Application form"},
        ],
    }
    row.update(overrides)
    return row


CATALOG: dict[str, Any] = {
    "life_events": [
        {"code": "birth", "name": "出生", "name_en": "Birth", "audience": "person"},
        {
            "code": "start_business",
            "name": "开办企业",
            "name_en": "Starting a business",
            "audience": "organization",
        },
    ],
    "license_types": [
        {
            "code": "LT-ID",
            "name": "居民身份证",
            "name_en": "Resident ID card",
            "kind": "license",
            "holder_kind": "person",
            "issuing_departments": ["market"],
            "validity_years": 20,
        },
        {
            "code": "LT-BIZ",
            "name": "营业执照",
            "name_en": "Business licence",
            "kind": "license",
            "holder_kind": "organization",
            "issuing_departments": ["market"],
        },
    ],
    "items": [
        item_row(
            "ITEM-SOLE",
            "个体工商户登记",
            result_license_type="LT-BIZ",
            life_events=["start_business"],
            keywords="个体户 开店",
            promised_limit_days=1,
            steps=[{"name": "申请"}, {"name": "审查"}, {"name": "发证"}],
        ),
        item_row(
            "ITEM-BIRTH",
            "出生医学证明首次签发",
            item_type="confirmation",
            promised_limit_days=3,
            visits_required=1,
        ),
        item_row(
            "ITEM-HUKOU",
            "出生登记",
            summary="新生儿户口登记，可领取营业执照以外的证件",
            promised_limit_days=4,
            materials=[
                {
                    "key": "resident_id_card",
                    "name": "父母身份证",
                    "name_en": "Parents' ID",
                    "license_types": ["LT-ID"],
                },
                {
                    "key": "birth_proof",
                    "name": "出生医学证明",
                    "name_en": "Birth certificate",
                    "requirement": "conditional",
                    "dataset_codes": ["birth_medical"],
                },
            ],
        ),
    ],
    "bundles": [
        {
            "code": "newborn",
            "name": "新生儿出生一件事",
            "name_en": "Newborn",
            "summary": "一次办好",
            "summary_en": "Done at once",
            "life_event": "birth",
            "lead_department": "market",
            "items": ["ITEM-BIRTH", "ITEM-HUKOU"],
            "promised_limit_days": 4,
            "visits_required": 0,
            "steps": [{"name": "一次申请"}, {"name": "统一出件"}],
            "keywords": "新生儿",
        },
    ],
}


def catalog_document() -> dict[str, Any]:
    return copy.deepcopy(CATALOG)


def make_catalog(actor: Any = "system") -> None:
    make_department()
    catalog_load(data=catalog_document(), actor=actor)
