"""A small city for tests of certificate-free applications: a police office that issues
residence permits, the population and marriage datasets of the demo catalog, a health
and an education bureau that handle items needing them, grants, rows and bundles."""

import io
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.cases.factories import make_item
from tests.exchange.factories import load_datasets, make_grant, put_rows
from tests.licensing.factories import Office, make_office
from tests.people.factories import make_department
from tongban.cases.models import Upload
from tongban.cases.uploads import upload_store
from tongban.catalog.models import Bundle, BundleItem, LicenseType, LifeEvent, Material, ServiceItem
from tongban.exchange.models import AccessGrant, Dataset
from tongban.people.models import Department, Person, User

PDF = b"%PDF-1.7\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"


@dataclass
class City:
    police: Office  # issues the residence permit (office.license_type)
    datasets: dict[str, Dataset]
    health: Department
    education: Department


def make_city() -> City:
    datasets = load_datasets("population", "marriage")
    return City(
        police=make_office(code="police"),
        datasets=datasets,
        health=make_department(code="health", name="演示市卫生健康委员会"),
        education=make_department(code="education", name="演示市教育局"),
    )


def add_material(
    item: ServiceItem,
    key: str,
    *,
    name: str | None = None,
    license_types: list[LicenseType] = (),  # type: ignore[assignment]
    datasets: list[str] = (),  # type: ignore[assignment]
    required: bool = True,
) -> Material:
    material = Material.objects.create(
        item=item,
        key=key,
        name=name or key,
        requirement="required" if required else "conditional",
        dataset_codes=list(datasets),
        order=item.materials.count(),
    )
    material.license_types.set(list(license_types))
    return material


def make_health_item(city: City, *, code: str = "HEALTH-1", department: Department | None = None):
    """An item needing the residence permit (a license), the population register (shared
    data) and a marriage registration (conditional data: consent)."""
    item = make_item(
        city.police,
        code=code,
        name="生育登记",
        department=department or city.health,
        result_license_type=None,
    )
    add_material(item, "residence_permit", name="居住证", license_types=[city.police.license_type])
    add_material(item, "household", name="户籍信息", datasets=["population"])
    add_material(item, "marriage_certificate", name="结婚证", datasets=["marriage"])
    return item


def grant_reads(department: Department, city: City) -> list[AccessGrant]:
    return [
        make_grant(
            consumer=department,
            dataset=city.datasets["population"],
            fields=["name", "birth_date", "division_code", "address"],
        ),
        make_grant(
            consumer=department,
            dataset=city.datasets["marriage"],
            fields=["event", "registered_on", "spouse_name"],
        ),
    ]


def population_row(person: Person, **changes: Any) -> dict[str, Any]:
    return {
        "resident_id": person.resident_id,
        "name": person.name,
        "sex": "男" if person.sex == "M" else "女",
        "birth_date": person.birth_date.isoformat(),
        "ethnicity": "汉族",
        "division_code": person.division_code,
        "address": "演示市历下区龙奥北路1号6号楼1单元202室",
        "registered_since": "2021-03-01",
        "alive": True,
    } | changes


def marriage_row(person: Person, **changes: Any) -> dict[str, Any]:
    return {
        "resident_id": person.resident_id,
        "event": "结婚",
        "registered_on": "2020-05-20",
        "spouse_name": "李四",
        "spouse_resident_id": None,
        "registry": "演示市历下区民政局婚姻登记处",
    } | changes


def give_rows(city: City, person: Person) -> None:
    put_rows(city.datasets["population"], population_row(person))
    put_rows(city.datasets["marriage"], marriage_row(person))


def make_bundle(items: list[ServiceItem], *, code: str = "newborn") -> Bundle:
    event, _created = LifeEvent.objects.get_or_create(
        code="birth", defaults={"name": "出生", "audience": "person"}
    )
    bundle = Bundle.objects.create(
        code=code,
        name="新生儿出生一件事",
        summary="一次申请，多个事项",
        life_event=event,
        lead_department=items[0].department,
        promised_limit_days=10,
    )
    for order, item in enumerate(items):
        BundleItem.objects.create(bundle=bundle, item=item, order=order)
    return bundle


def upload_pdf(user: User, key: str, content: bytes = PDF) -> Upload:
    return upload_store(file=io.BytesIO(content), name=f"{key}.pdf", material_key=key, actor=user)


@pytest.fixture(autouse=True)
def upload_dir(settings, tmp_path) -> Path:
    """Uploads of a test go to its own directory (import this fixture into a test module)."""
    settings.UPLOAD_DIR = tmp_path / "uploads"
    return settings.UPLOAD_DIR


def use_permit_renewal_rules(settings, tmp_path: Path, license_type: str, item: str) -> None:
    """The 秒批 rule book of a residence-permit endorsement (居住证签注): approved for a
    holder of a valid permit who lives in the city; made this test's rule book."""
    book = {
        "rules": [
            {
                "item": item,
                "name": "居住证签注秒批",
                "legal_reference": "《居住证暂行条例》第十三条",
                "effective_from": "2024-01-01",
                "conditions": [
                    {
                        "id": "permit_valid",
                        "kind": "license_held",
                        "license_type": license_type,
                        "description": "持有有效居住证",
                        "legal_reference": "《居住证暂行条例》第十三条",
                    },
                    {
                        "id": "living_here",
                        "kind": "field_in",
                        "dataset": "population",
                        "field": "division_code",
                        "prefixes": ["3701"],
                        "description": "在本市登记居住",
                        "legal_reference": "《居住证暂行条例》第二条",
                    },
                ],
                "result": {
                    "base_license": license_type,
                    "surface": {"endorsement": {"template": "{year}年度签注"}},
                },
            }
        ]
    }
    path = tmp_path / "rules.yaml"
    path.write_text(yaml.safe_dump(book, allow_unicode=True), encoding="utf-8")
    settings.CASES_RULES_FILE = str(path)
