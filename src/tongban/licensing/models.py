"""Electronic licenses and seals (电子证照, 电子印章): issued instances of the license types
that the catalog describes, the departments' signing keys, who may use them, and the
status lists that carry revocation and suspension to offline verifiers."""

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from tongban.catalog.models import LicenseType
from tongban.people.models import Department, Organization, Person

STATUS_LIST_PATH = "/api/v1/licenses/status-lists/"
"""Where status lists are published; a license's status reference is this plus the list id."""


class Seal(models.Model):
    """A department's electronic seal (电子印章): a signing key and its seal image.

    Rotation makes a new seal; a retired seal still verifies what it signed until
    `valid_until`, but signs nothing more."""

    class Algorithm(models.TextChoices):
        ES256 = "ES256", "ECDSA P-256 / SHA-256"
        EDDSA = "EdDSA", "Ed25519"
        SM2SM3 = "SM2SM3", "SM2 / SM3 (国密)"

    department = models.ForeignKey(
        Department, on_delete=models.PROTECT, related_name="seals", verbose_name=_("department")
    )
    name = models.CharField(_("name"), max_length=100)
    algorithm = models.CharField(_("algorithm"), max_length=8, choices=Algorithm.choices)
    key_id = models.CharField(_("key ID"), max_length=16, unique=True)
    public_key = models.BinaryField(_("public key"))
    # AES-GCM under a key from settings (signers.private_key_seal); never shown anywhere.
    private_key_sealed = models.TextField(editable=False)
    image_svg = models.TextField(_("seal image (SVG)"), editable=False)
    valid_from = models.DateTimeField(_("valid from"))
    valid_until = models.DateTimeField(_("valid until"))
    retired_at = models.DateTimeField(_("retired at"), null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["department", "-valid_from"]
        verbose_name = _("seal")
        verbose_name_plural = _("seals")
        constraints = [
            models.CheckConstraint(
                condition=models.Q(valid_until__gt=models.F("valid_from")),
                name="seal_validity_ordered",
            ),
        ]

    def __str__(self) -> str:
        return self.name


class SealGrant(models.Model):
    """Who may use which seal for which license types, from when to when (用印授权)."""

    seal = models.ForeignKey(Seal, on_delete=models.PROTECT, related_name="grants")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="seal_grants"
    )
    license_types = models.ManyToManyField(LicenseType, related_name="seal_grants")
    valid_from = models.DateTimeField(_("valid from"))
    valid_until = models.DateTimeField(_("valid until"))
    granted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
    )
    revoked_at = models.DateTimeField(_("revoked at"), null=True, blank=True)
    # For signing without a clerk (自动签发): proofs the platform generates from the
    # department's own data. Only an account nobody can log in to may hold such a grant.
    automated = models.BooleanField(_("automated issuance"), default=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("seal grant")
        verbose_name_plural = _("seal grants")

    def __str__(self) -> str:
        return f"{self.seal} → {self.user}"


class StatusList(models.Model):
    """A token status list (2 bits per license): what offline verifiers download to learn
    about revocation and suspension. Indexes are allocated at random, so an index says
    nothing about when or to whom a license was issued."""

    size = models.PositiveIntegerField(default=131_072)
    bits = models.PositiveSmallIntegerField(default=2)
    statuses = models.BinaryField()
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = _("status list")
        verbose_name_plural = _("status lists")

    def __str__(self) -> str:
        return f"status list {self.pk}"


class License(models.Model):
    """One issued version of an electronic license or proof (电子证照 / 电子证明)."""

    class Status(models.TextChoices):
        VALID = "valid", _("Valid")
        SUSPENDED = "suspended", _("Suspended")
        REVOKED = "revoked", _("Revoked")

    identifier = models.CharField(_("identifier"), max_length=160, unique=True)
    license_type = models.ForeignKey(
        LicenseType,
        on_delete=models.PROTECT,
        related_name="licenses",
        verbose_name=_("license type"),
    )
    number = models.CharField(_("license number"), max_length=64)
    version = models.PositiveSmallIntegerField(_("version"), default=1)
    predecessor = models.OneToOneField(
        "self",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="successor",
        verbose_name=_("replaces"),
    )
    holder_person = models.ForeignKey(
        Person, on_delete=models.PROTECT, null=True, blank=True, related_name="licenses"
    )
    holder_organization = models.ForeignKey(
        Organization, on_delete=models.PROTECT, null=True, blank=True, related_name="licenses"
    )
    issuer = models.ForeignKey(
        Department,
        on_delete=models.PROTECT,
        related_name="issued_licenses",
        verbose_name=_("issuer"),
    )
    seal = models.ForeignKey(Seal, on_delete=models.PROTECT, related_name="licenses")
    grant = models.ForeignKey(
        SealGrant, on_delete=models.PROTECT, null=True, blank=True, related_name="licenses"
    )
    surface = models.JSONField(_("surface fields"))
    issued_at = models.DateTimeField(_("issued at"))
    valid_from = models.DateField(_("valid from"))
    valid_until = models.DateField(_("valid until"), null=True, blank=True)
    jurisdiction_code = models.CharField(_("jurisdiction"), max_length=12)
    status = models.CharField(
        _("status"), max_length=10, choices=Status.choices, default=Status.VALID
    )
    status_reason = models.CharField(_("status reason"), max_length=200, blank=True)
    status_list = models.ForeignKey(StatusList, on_delete=models.PROTECT, related_name="+")
    status_index = models.PositiveIntegerField()
    signature = models.BinaryField(editable=False)

    class Meta:
        ordering = ["-issued_at"]
        verbose_name = _("license")
        verbose_name_plural = _("licenses")
        constraints = [
            models.CheckConstraint(
                condition=(
                    models.Q(holder_person__isnull=False, holder_organization__isnull=True)
                    | models.Q(holder_person__isnull=True, holder_organization__isnull=False)
                ),
                name="license_has_one_holder",
            ),
            models.UniqueConstraint(
                fields=["status_list", "status_index"], name="license_status_index_unique"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.license_type} {self.number}"

    @property
    def status_uri(self) -> str:
        return f"{STATUS_LIST_PATH}{self.status_list_id}"


class LicenseCopy(models.Model):
    """A purpose-bound, time-limited copy (副本/加注件) the holder hands to a third party:
    it discloses only the chosen fields, says what it may be used for, and expires."""

    license = models.ForeignKey(License, on_delete=models.PROTECT, related_name="copies")
    purpose = models.CharField(_("purpose"), max_length=60)
    recipient = models.CharField(_("recipient"), max_length=100, blank=True)
    fields = models.JSONField(_("disclosed fields"), default=list)
    expires_at = models.DateTimeField(_("expires at"))
    # The online link's secret: unguessable, so the short URL is the only way in.
    token = models.CharField(max_length=32, unique=True, editable=False)
    withdrawn_at = models.DateTimeField(_("withdrawn at"), null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name = _("license copy")
        verbose_name_plural = _("license copies")

    def __str__(self) -> str:
        return f"{self.license} · {self.purpose}"


class Consent(models.Model):
    """A holder lets an organization use a license — later also their data — for one
    purpose until a date (授权用证/授权用数), and may withdraw it. One model for the concept,
    so the data exchange reuses it."""

    holder_person = models.ForeignKey(
        Person, on_delete=models.PROTECT, null=True, blank=True, related_name="consents"
    )
    holder_organization = models.ForeignKey(
        Organization, on_delete=models.PROTECT, null=True, blank=True, related_name="consents"
    )
    # Exactly one grantee: an organization (a license) or a department (data, 授权用数).
    grantee = models.ForeignKey(
        Organization,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="consents_received",
        verbose_name=_("authorized organization"),
    )
    grantee_department = models.ForeignKey(
        Department,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="consents_received",
        verbose_name=_("authorized department"),
    )
    # What is shared: one license, or one dataset of the exchange (named by its code, as
    # catalog materials name datasets, so this app never imports the exchange).
    license = models.ForeignKey(
        License, on_delete=models.PROTECT, null=True, blank=True, related_name="consents"
    )
    dataset_code = models.CharField(_("dataset"), max_length=40, blank=True)
    purpose = models.CharField(_("purpose"), max_length=60)
    valid_until = models.DateField(_("valid until"))
    withdrawn_at = models.DateTimeField(_("withdrawn at"), null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name = _("consent")
        verbose_name_plural = _("consents")
        constraints = [
            models.CheckConstraint(
                condition=(
                    models.Q(holder_person__isnull=False, holder_organization__isnull=True)
                    | models.Q(holder_person__isnull=True, holder_organization__isnull=False)
                ),
                name="consent_has_one_holder",
            ),
            models.CheckConstraint(
                condition=(
                    models.Q(grantee__isnull=False, grantee_department__isnull=True)
                    | models.Q(grantee__isnull=True, grantee_department__isnull=False)
                ),
                name="consent_has_one_grantee",
            ),
            models.CheckConstraint(
                condition=(
                    models.Q(license__isnull=False, dataset_code="")
                    | (models.Q(license__isnull=True) & ~models.Q(dataset_code=""))
                ),
                name="consent_covers_license_or_dataset",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.grantee_party} · {self.purpose}"

    @property
    def grantee_party(self) -> Organization | Department:
        """Whom the consent authorizes; both kinds have a name and a credit code."""
        party = self.grantee or self.grantee_department
        if party is None:
            raise ValueError("a consent always has a grantee")  # the constraint says so
        return party
