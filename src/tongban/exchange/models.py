"""The data-sharing exchange (数据共享交换): the data catalog (数据目录), the base databases
that hold the shared rows, sharing grants (共享授权), the machine credentials department
systems call with, and the remembered answers that make retries idempotent.

Consent (授权用数) is not here: it is `licensing.Consent`, one model for letting a party use
a license or data."""

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from tongban.people.models import Department


class SharingClass(models.TextChoices):
    UNCONDITIONAL = "unconditional", _("Shared without conditions")  # 无条件共享
    CONDITIONAL = "conditional", _("Shared with the subject's consent")  # 有条件共享
    NONE = "none", _("Not shared")  # 不予共享


class Purpose(models.TextChoices):
    """Why a consumer reads shared data; a grant names one, and every query states it."""

    SERVICE_HANDLING = "service_handling", _("Handling a government service")  # 政务服务办理
    ELIGIBILITY_REVIEW = "eligibility_review", _("Eligibility review")  # 资格审核
    SOCIAL_ASSISTANCE = "social_assistance", _("Social assistance")  # 社会救助
    SUPERVISION = "supervision", _("Regulatory supervision")  # 监管执法
    STATISTICS = "statistics", _("Statistics")  # 统计分析


class Dataset(models.Model):
    """A catalog entry for shared data (数据目录): who provides it, its fields, how it is shared.

    `fields` is a list of {"key", "name", "name_en", "type", "sensitivity"}; `type` is one of
    FIELD_TYPES in `schema`, and the field named by `subject_field` identifies whose row it is.
    """

    class SubjectKind(models.TextChoices):
        PERSON = "person", _("Person")
        ORGANIZATION = "organization", _("Organization")
        ANY = "any", _("Person or organization")
        NONE = "none", _("No personal subject")

    class Source(models.TextChoices):
        LOCAL = "local", _("Base database")
        LICENSES = "licenses", _("Electronic licenses")
        REMOTE = "remote", _("Provider's own system")

    code = models.SlugField(_("code"), max_length=40, unique=True)
    name = models.CharField(_("name"), max_length=64)
    name_en = models.CharField(_("English name"), max_length=128, blank=True)
    description = models.TextField(_("description"), blank=True)
    description_en = models.TextField(_("English description"), blank=True)
    provider = models.ForeignKey(
        Department, on_delete=models.PROTECT, related_name="datasets", verbose_name=_("provider")
    )
    sharing_class = models.CharField(
        _("sharing class"), max_length=16, choices=SharingClass.choices
    )
    subject_kind = models.CharField(_("subject kind"), max_length=16, choices=SubjectKind.choices)
    subject_field = models.CharField(_("subject field"), max_length=40)
    fields = models.JSONField(_("fields"))
    update_frequency = models.CharField(_("update frequency"), max_length=20)
    legal_basis = models.CharField(_("legal basis"), max_length=200)
    source = models.CharField(
        _("source"), max_length=10, choices=Source.choices, default=Source.LOCAL
    )
    # A remote provider: where the exchange sends signed requests, and the key its signed
    # answers are checked with (raw Ed25519 public key).
    endpoint = models.URLField(_("provider endpoint"), blank=True)
    provider_public_key = models.BinaryField(_("provider public key"), null=True, blank=True)
    row_count = models.PositiveIntegerField(_("rows"), default=0)
    updated_at = models.DateTimeField(_("data updated at"), null=True, blank=True)

    class Meta:
        ordering = ["code"]
        verbose_name = _("dataset")
        verbose_name_plural = _("datasets")
        constraints = [
            models.CheckConstraint(
                condition=~models.Q(source="remote") | ~models.Q(endpoint=""),
                name="dataset_remote_has_endpoint",
            ),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def field_keys(self) -> list[str]:
        return [field["key"] for field in self.fields]


class Record(models.Model):
    """One row of a base database (基础库), keyed by its subject (resident ID, credit code or
    division code). A subject may have several rows (e.g. two properties)."""

    dataset = models.ForeignKey(Dataset, on_delete=models.CASCADE, related_name="records")
    subject = models.CharField(_("subject"), max_length=18)
    data = models.JSONField(_("data"))

    class Meta:
        verbose_name = _("record")
        verbose_name_plural = _("records")
        indexes = [models.Index(fields=["dataset", "subject"], name="record_subject_idx")]

    def __str__(self) -> str:
        return f"{self.dataset_id}:{self.subject}"


class ImportRun(models.Model):
    """One import of a file into a base database, with its report of rejected rows."""

    class Status(models.TextChoices):
        COMPLETED = "completed", _("Completed")
        FAILED = "failed", _("Failed")

    dataset = models.ForeignKey(Dataset, on_delete=models.PROTECT, related_name="imports")
    file_name = models.CharField(_("file"), max_length=255)
    status = models.CharField(_("status"), max_length=10, choices=Status.choices)
    rows_read = models.PositiveIntegerField(_("rows read"), default=0)
    rows_imported = models.PositiveIntegerField(_("rows imported"), default=0)
    # [{"line": 7, "reason": "..."}], at most REPORT_LIMIT entries; rows_rejected counts all.
    rejected = models.JSONField(_("rejected rows"), default=list)
    rows_rejected = models.PositiveIntegerField(_("rows rejected"), default=0)
    error = models.TextField(_("error"), blank=True)
    actor = models.CharField(_("actor"), max_length=255)
    started_at = models.DateTimeField(_("started at"))
    finished_at = models.DateTimeField(_("finished at"))

    class Meta:
        ordering = ["-started_at"]
        verbose_name = _("import run")
        verbose_name_plural = _("import runs")

    def __str__(self) -> str:
        return f"{self.dataset_id} {self.file_name}"


class AccessGrant(models.Model):
    """共享授权: a consumer department may read these fields of a dataset — or only ask
    yes/no questions over them — for one purpose under a legal basis, until a date."""

    class Status(models.TextChoices):
        REQUESTED = "requested", _("Requested")
        APPROVED = "approved", _("Approved")
        REJECTED = "rejected", _("Rejected")
        REVOKED = "revoked", _("Revoked")

    class Mode(models.TextChoices):
        QUERY = "query", _("Read fields")  # 查询
        VERIFY = "verify", _("Yes/no verification only")  # 核验

    consumer = models.ForeignKey(
        Department,
        on_delete=models.PROTECT,
        related_name="access_grants",
        verbose_name=_("consumer department"),
    )
    dataset = models.ForeignKey(
        Dataset, on_delete=models.PROTECT, related_name="grants", verbose_name=_("dataset")
    )
    mode = models.CharField(_("mode"), max_length=8, choices=Mode.choices, default=Mode.QUERY)
    fields = models.JSONField(_("fields"))
    full_id = models.BooleanField(_("full ID numbers"), default=False)
    purpose = models.CharField(_("purpose"), max_length=24, choices=Purpose.choices)
    legal_basis = models.CharField(_("legal basis"), max_length=200)
    valid_from = models.DateField(_("valid from"))
    valid_until = models.DateField(_("valid until"))
    status = models.CharField(
        _("status"), max_length=10, choices=Status.choices, default=Status.REQUESTED
    )
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    requested_at = models.DateTimeField(_("requested at"), auto_now_add=True)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    decided_at = models.DateTimeField(_("decided at"), null=True, blank=True)
    decision_note = models.CharField(_("note"), max_length=200, blank=True)

    class Meta:
        ordering = ["-requested_at"]
        verbose_name = _("access grant")
        verbose_name_plural = _("access grants")
        indexes = [
            models.Index(fields=["consumer", "dataset", "status"], name="grant_lookup_idx"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(valid_until__gte=models.F("valid_from")),
                name="grant_validity_ordered",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.consumer} → {self.dataset} · {self.purpose}"


class MachineCredential(models.Model):
    """An API token a department's own system calls the exchange with (never a person's
    login). Only a SHA-256 of the secret is stored; the token is shown once."""

    department = models.ForeignKey(
        Department,
        on_delete=models.PROTECT,
        related_name="machine_credentials",
        verbose_name=_("department"),
    )
    name = models.CharField(_("system name"), max_length=60)
    key_id = models.CharField(_("key ID"), max_length=16, unique=True)
    secret_hash = models.CharField(max_length=64, editable=False)
    rate_limit = models.PositiveIntegerField(_("requests per minute"), default=600)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    expires_at = models.DateTimeField(_("expires at"))
    revoked_at = models.DateTimeField(_("revoked at"), null=True, blank=True)
    last_used_at = models.DateTimeField(_("last used at"), null=True, blank=True)
    replaced_by = models.OneToOneField(
        "self", on_delete=models.PROTECT, null=True, blank=True, related_name="replaces"
    )

    class Meta:
        ordering = ["department", "-created_at"]
        verbose_name = _("machine credential")
        verbose_name_plural = _("machine credentials")

    def __str__(self) -> str:
        return f"{self.department} · {self.name} ({self.key_id})"

    @property
    def audit_label(self) -> str:
        return f"credential:{self.key_id}:{self.department.code}"


class ExchangeRequest(models.Model):
    """The answer to a query or verification sent with an Idempotency-Key, kept for a day so a
    retry gets the same answer without a second read or a second audit entry."""

    consumer = models.ForeignKey(Department, on_delete=models.CASCADE, related_name="+")
    key = models.CharField(max_length=64)
    request_digest = models.CharField(max_length=64)
    response = models.JSONField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["consumer", "key"], name="exchange_request_key_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.consumer_id}:{self.key}"
