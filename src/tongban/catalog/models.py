"""The service catalog: what exists (事项, 申请材料, 一件事, 证照目录, 人生事件).

Catalogs describe; higher apps hold instances. Items and materials name license types,
so license types live here too; materials name datasets by code only.
"""

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from tongban.core.i18n import translated
from tongban.people.models import Department


class Audience(models.TextChoices):
    PERSON = "person", _("Citizens")
    ORGANIZATION = "organization", _("Businesses and organizations")
    BOTH = "both", _("Citizens and organizations")


class Translated(models.Model):
    """Text fields with an English twin: `tr("name")` picks the active language."""

    class Meta:
        abstract = True

    def tr(self, field: str) -> str:
        return translated(self, field)

    @property
    def display_name(self) -> str:
        return self.tr("name")


class LifeEvent(Translated):
    """A life event (人生事件) or business event (企业事件) used to browse the catalog."""

    code = models.SlugField(_("code"), max_length=32, unique=True)
    name = models.CharField(_("name"), max_length=32)
    name_en = models.CharField(_("English name"), max_length=64, blank=True)
    audience = models.CharField(_("audience"), max_length=16, choices=Audience.choices)
    order = models.PositiveSmallIntegerField(default=0)

    class Meta:
        ordering = ["audience", "order", "code"]
        verbose_name = _("life event")
        verbose_name_plural = _("life events")

    def __str__(self) -> str:
        return self.name


class LicenseType(Translated):
    """A license, certificate or proof type (证照类型, GB/T 36906 证照目录)."""

    class Kind(models.TextChoices):
        LICENSE = "license", _("License or certificate")
        PROOF = "proof", _("Proof")

    code = models.CharField(_("type code"), max_length=32, unique=True)
    name = models.CharField(_("name"), max_length=64)
    name_en = models.CharField(_("English name"), max_length=128, blank=True)
    kind = models.CharField(_("kind"), max_length=8, choices=Kind.choices, default=Kind.LICENSE)
    holder_kind = models.CharField(
        _("holder"), max_length=16, choices=Audience.choices, default=Audience.PERSON
    )
    issuing_departments = models.ManyToManyField(
        Department, related_name="license_types", verbose_name=_("issuing departments")
    )
    validity_years = models.PositiveSmallIntegerField(
        _("validity in years"), null=True, blank=True, help_text=_("Empty means permanent.")
    )
    standard_code = models.CharField(
        _("standard type code"),
        max_length=21,
        unique=True,
        null=True,
        blank=True,
        help_text=_("GB/T 36906 type code: the defining body's credit code and a 3-digit number"),
    )
    surface_schema = models.JSONField(
        _("surface fields schema"),
        default=dict,
        blank=True,
        help_text=_("JSON Schema of the surface fields (照面信息) a license of this type carries"),
    )
    qr_fields = models.JSONField(
        _("offline QR fields"),
        default=list,
        blank=True,
        help_text=_("Surface fields carried in the offline QR code"),
    )
    digest_fields = models.JSONField(
        _("digest fields"),
        default=list,
        blank=True,
        help_text=_("Long surface fields that travel in the QR code as a SHA-256 digest"),
    )
    disclosable_fields = models.JSONField(
        _("disclosable fields"),
        default=list,
        blank=True,
        help_text=_("Surface fields a holder may disclose one by one"),
    )
    # 到期提醒: the largest step is the reminder window of the type.
    reminder_days = models.JSONField(
        _("expiry reminders (days before)"),
        default=list,
        blank=True,
        help_text=_(
            "Days before expiry on which holders are reminded, e.g. [90, 30, 7]; empty means "
            "the platform default."
        ),
    )
    renewal_item = models.ForeignKey(
        "ServiceItem",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="renewed_license_types",
        verbose_name=_("renewal service"),
        help_text=_("The service (换证/延续) that renews a license of this type."),
    )
    auto_renew = models.BooleanField(
        _("renew on the holder's behalf"),
        default=False,
        help_text=_(
            "Designated types: at the first reminder the platform applies for the renewal "
            "service for the holder; where its instant-approval rules pass, it is renewed at once."
        ),
    )

    class Meta:
        ordering = ["code"]
        verbose_name = _("license type")
        verbose_name_plural = _("license types")

    def __str__(self) -> str:
        return self.name


class ServiceItem(Translated):
    """A standardized government service item (政务服务事项), with the GB/T 39046 elements."""

    class ItemType(models.TextChoices):
        LICENSING = "licensing", _("Administrative licensing")
        CONFIRMATION = "confirmation", _("Administrative confirmation")
        PAYMENT = "payment", _("Administrative payment")
        FILING = "filing", _("Administrative filing")
        PUBLIC_SERVICE = "public_service", _("Public service")
        OTHER = "other", _("Other administrative power")

    class HandlingKind(models.TextChoices):
        IMMEDIATE = "immediate", _("Handled on the spot")
        PROMISED = "promised", _("Handled within a promised time")

    class OnlineDepth(models.IntegerChoices):
        GUIDE = 1, _("Level 1: guide online")
        FORMS = 2, _("Level 2: forms online")
        PRE_REVIEW = 3, _("Level 3: online pre-review")
        FULL = 4, _("Level 4: fully online")

    class CrossRegion(models.TextChoices):
        NATIONAL = "national", _("Nationwide")
        INTER_PROVINCE = "inter_province", _("Across provinces")
        INTER_CITY = "inter_city", _("Across cities in the province")
        LOCAL = "local", _("This city only")

    basic_code = models.CharField(_("basic code"), max_length=32, db_index=True)
    code = models.CharField(
        _("implementation code"),
        max_length=64,
        unique=True,
        help_text=_("GB/T 39554.1 implementation code"),
    )
    name = models.CharField(_("name"), max_length=100)
    name_en = models.CharField(_("English name"), max_length=200, blank=True)
    summary = models.TextField(_("summary"))
    summary_en = models.TextField(_("English summary"), blank=True)
    item_type = models.CharField(_("item type"), max_length=16, choices=ItemType.choices)
    department = models.ForeignKey(
        Department,
        on_delete=models.PROTECT,
        related_name="items",
        verbose_name=_("implementing department"),
    )
    audience = models.CharField(_("who may apply"), max_length=16, choices=Audience.choices)
    conditions = models.TextField(_("conditions"))
    conditions_en = models.TextField(_("English conditions"), blank=True)
    legal_basis = models.TextField(_("legal basis"))
    legal_limit_days = models.PositiveSmallIntegerField(_("legal time limit (working days)"))
    promised_limit_days = models.PositiveSmallIntegerField(_("promised time limit (working days)"))
    handling_kind = models.CharField(
        _("handling kind"), max_length=16, choices=HandlingKind.choices
    )
    is_free = models.BooleanField(_("free of charge"), default=True)
    fee = models.TextField(_("fees"), blank=True)
    online_depth = models.PositiveSmallIntegerField(_("online depth"), choices=OnlineDepth.choices)
    cross_region = models.CharField(
        _("cross-region scope"), max_length=16, choices=CrossRegion.choices
    )
    visits_required = models.PositiveSmallIntegerField(_("visits required"), default=0)
    offline_locations = models.JSONField(_("offline service locations"), default=list, blank=True)
    steps = models.JSONField(_("process steps"), default=list, blank=True)
    faq = models.JSONField(_("frequently asked questions"), default=list, blank=True)
    result_license_type = models.ForeignKey(
        LicenseType,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="resulting_items",
        verbose_name=_("result license type"),
    )
    life_events = models.ManyToManyField(
        LifeEvent, blank=True, related_name="items", verbose_name=_("life events")
    )
    keywords = models.CharField(_("search keywords"), max_length=200, blank=True)
    is_active = models.BooleanField(_("published"), default=True)
    version = models.PositiveIntegerField(default=1, editable=False)
    updated_at = models.DateTimeField(auto_now=True)
    search_text = models.TextField(editable=False, default="")

    class Meta:
        ordering = ["code"]
        verbose_name = _("service item")
        verbose_name_plural = _("service items")
        # Listing and counting published items in code order reads this index alone.
        indexes = [models.Index(fields=["is_active", "code"], name="item_published_code")]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(promised_limit_days__lte=models.F("legal_limit_days")),
                name="item_promised_within_legal_limit",
            ),
        ]

    def __str__(self) -> str:
        return self.name


class Material(Translated):
    """One required input of an item (申请材料), and the sources that can satisfy it."""

    class Form(models.TextChoices):
        ORIGINAL = "original", _("Original")
        COPY = "copy", _("Copy")
        ORIGINAL_AND_COPY = "original_and_copy", _("Original and copy")
        ELECTRONIC = "electronic", _("Electronic")

    class Requirement(models.TextChoices):
        REQUIRED = "required", _("Required")
        CONDITIONAL = "conditional", _("Conditional")

    item = models.ForeignKey(ServiceItem, on_delete=models.CASCADE, related_name="materials")
    key = models.SlugField(
        _("material key"),
        max_length=48,
        help_text=_("The same key in several items means the same material (merged in bundles)."),
    )
    name = models.CharField(_("name"), max_length=100)
    name_en = models.CharField(_("English name"), max_length=200, blank=True)
    form = models.CharField(_("form"), max_length=20, choices=Form.choices, default=Form.ORIGINAL)
    copies = models.PositiveSmallIntegerField(_("copies"), default=1)
    requirement = models.CharField(
        _("requirement"), max_length=12, choices=Requirement.choices, default=Requirement.REQUIRED
    )
    condition_note = models.CharField(_("when required"), max_length=200, blank=True)
    license_types = models.ManyToManyField(
        LicenseType,
        blank=True,
        related_name="materials",
        verbose_name=_("satisfied by license types"),
    )
    dataset_codes = models.JSONField(
        _("satisfied by datasets"),
        default=list,
        blank=True,
        help_text=_("Codes of shared datasets (数据目录) that can satisfy this material."),
    )
    order = models.PositiveSmallIntegerField(default=0)

    class Meta:
        ordering = ["item", "order", "id"]
        verbose_name = _("material")
        verbose_name_plural = _("materials")
        constraints = [
            models.UniqueConstraint(fields=["item", "key"], name="material_key_unique_per_item"),
        ]

    def __str__(self) -> str:
        return self.name


class Bundle(Translated):
    """A one-thing bundle (一件事): several items applied for together."""

    code = models.SlugField(_("code"), max_length=48, unique=True)
    name = models.CharField(_("name"), max_length=100)
    name_en = models.CharField(_("English name"), max_length=200, blank=True)
    summary = models.TextField(_("summary"))
    summary_en = models.TextField(_("English summary"), blank=True)
    life_event = models.ForeignKey(
        LifeEvent, on_delete=models.PROTECT, related_name="bundles", verbose_name=_("life event")
    )
    lead_department = models.ForeignKey(
        Department,
        on_delete=models.PROTECT,
        related_name="led_bundles",
        verbose_name=_("lead department"),
    )
    items = models.ManyToManyField(
        ServiceItem, through="BundleItem", related_name="bundles", verbose_name=_("items")
    )
    promised_limit_days = models.PositiveSmallIntegerField(_("promised time limit (working days)"))
    visits_required = models.PositiveSmallIntegerField(_("visits required"), default=0)
    steps = models.JSONField(_("process steps"), default=list, blank=True)
    keywords = models.CharField(_("search keywords"), max_length=200, blank=True)
    is_active = models.BooleanField(_("published"), default=True)
    version = models.PositiveIntegerField(default=1, editable=False)
    updated_at = models.DateTimeField(auto_now=True)
    search_text = models.TextField(editable=False, default="")

    class Meta:
        ordering = ["code"]
        verbose_name = _("bundle")
        verbose_name_plural = _("bundles")

    def __str__(self) -> str:
        return self.name


class BundleItem(models.Model):
    bundle = models.ForeignKey(Bundle, on_delete=models.CASCADE)
    item = models.ForeignKey(ServiceItem, on_delete=models.PROTECT)
    order = models.PositiveSmallIntegerField(default=0)

    class Meta:
        ordering = ["bundle", "order", "id"]
        constraints = [
            models.UniqueConstraint(fields=["bundle", "item"], name="bundle_item_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.bundle_id}:{self.item_id}"


class CatalogRevision(models.Model):
    """One saved version of an item or bundle (版本历史): a full snapshot, never edited."""

    class Kind(models.TextChoices):
        ITEM = "item", _("Service item")
        BUNDLE = "bundle", _("Bundle")

    kind = models.CharField(max_length=8, choices=Kind.choices)
    code = models.CharField(max_length=64)
    version = models.PositiveIntegerField()
    snapshot = models.JSONField()
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["kind", "code", "-version"]
        constraints = [
            models.UniqueConstraint(fields=["kind", "code", "version"], name="revision_unique"),
        ]
        verbose_name = _("catalog revision")
        verbose_name_plural = _("catalog revisions")

    def __str__(self) -> str:
        return f"{self.kind}:{self.code} v{self.version}"
