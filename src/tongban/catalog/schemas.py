"""API schemas for the service catalog."""

from typing import Literal

from ninja import Field, Schema

from .models import Material, ServiceItem
from .selectors import MergedMaterial, material_is_fetchable

ItemType = Literal["licensing", "confirmation", "payment", "filing", "public_service", "other"]
AudienceCode = Literal["person", "organization", "both"]


class DepartmentOut(Schema):
    code: str
    name: str
    name_en: str


class LicenseTypeOut(Schema):
    code: str
    name: str
    name_en: str
    kind: str


class LifeEventOut(Schema):
    code: str
    name: str
    name_en: str
    audience: str


class ItemSummaryOut(Schema):
    code: str
    basic_code: str
    name: str
    name_en: str
    item_type: str
    department: DepartmentOut
    audience: str
    promised_limit_days: int
    online_depth: int
    cross_region: str
    is_free: bool
    version: int


class MaterialOut(Schema):
    key: str
    name: str
    name_en: str
    form: str
    copies: int
    requirement: str
    condition_note: str
    license_types: list[str] = Field(description="License type codes that satisfy it")
    dataset_codes: list[str]
    fetchable: bool = Field(description="The government fetches it itself (免提交)")

    @staticmethod
    def resolve_license_types(obj: Material) -> list[str]:
        return [t.code for t in obj.license_types.all()]

    @staticmethod
    def resolve_fetchable(obj: Material) -> bool:
        return material_is_fetchable(obj)


class ItemDetailOut(ItemSummaryOut):
    summary: str
    summary_en: str
    conditions: str
    conditions_en: str
    legal_basis: str
    legal_limit_days: int
    handling_kind: str
    fee: str
    visits_required: int
    offline_locations: list[dict]
    steps: list[dict]
    faq: list[dict]
    result_license_type: LicenseTypeOut | None
    life_events: list[str]
    materials: list[MaterialOut]

    @staticmethod
    def resolve_life_events(obj: ServiceItem) -> list[str]:
        return [e.code for e in obj.life_events.all()]


class BundleSummaryOut(Schema):
    code: str
    name: str
    name_en: str
    life_event: LifeEventOut
    lead_department: DepartmentOut
    promised_limit_days: int
    version: int


class MergedMaterialOut(Schema):
    key: str
    name: str
    name_en: str
    required: bool
    fetchable: bool
    items: list[str]

    @staticmethod
    def resolve_name(obj: MergedMaterial) -> str:
        return obj.material.name

    @staticmethod
    def resolve_name_en(obj: MergedMaterial) -> str:
        return obj.material.name_en

    @staticmethod
    def resolve_items(obj: MergedMaterial) -> list[str]:
        return [i.code for i in obj.items]


class SavingsOut(Schema):
    separate_steps: int
    bundle_steps: int
    separate_materials: int
    bundle_materials: int
    separate_days: int
    bundle_days: int
    separate_visits: int
    bundle_visits: int


class BundleDetailOut(BundleSummaryOut):
    summary: str
    summary_en: str
    visits_required: int
    steps: list[dict]
    items: list[ItemSummaryOut]
    materials: list[MergedMaterialOut]
    savings: SavingsOut


class ItemFilters(Schema):
    q: str = Field("", max_length=100, description="Search text, e.g. 营业执照")
    department: str | None = Field(None, max_length=32, description="Department code")
    life_event: str | None = Field(None, max_length=32, description="Life event code")
    item_type: ItemType | None = None
    online_depth: int | None = Field(None, ge=1, le=4)
    audience: AudienceCode | None = None


class BundleFilters(Schema):
    q: str = Field("", max_length=100)
    life_event: str | None = Field(None, max_length=32)
