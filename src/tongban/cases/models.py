"""Online applications (办件): one `Case` per item applied for, grouped by the `Submission`
that created them (one item, or a whole one-thing bundle), with the timeline of every
transition, uploaded files and the applicant's evaluation (好差评)."""

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from tongban.catalog.models import Bundle, ServiceItem
from tongban.licensing.models import License
from tongban.people.models import Department, Organization, Person


class Applicant(models.Model):
    """Whom an application is for: a person or an organization (exactly one), which may
    differ from the account that submitted it (帮办代办)."""

    applicant_person = models.ForeignKey(
        Person, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    # Indexed where set (each model's `organization_idx`): most applicants are people, and
    # an index of nulls costs every bulk-opened case an entry nobody looks up.
    applicant_organization = models.ForeignKey(
        Organization,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        db_index=False,
    )
    submitted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )

    class Meta:
        abstract = True

    @property
    def applicant(self) -> Person | Organization:
        applicant = self.applicant_person or self.applicant_organization
        if applicant is None:
            raise ValueError("an application always has an applicant")  # the constraint says so
        return applicant

    @property
    def applicant_subject(self) -> tuple[str, str]:
        """The applicant as the audit log and the exchange name subjects."""
        if self.applicant_person is not None:
            return ("person", self.applicant_person.resident_id)
        return ("organization", self.applicant.credit_code)  # type: ignore[union-attr]


def _organization_index(prefix: str) -> models.Index:
    return models.Index(
        fields=["applicant_organization"],
        condition=models.Q(applicant_organization__isnull=False),
        name=f"{prefix}_organization_idx",
    )


def _one_applicant(prefix: str) -> models.CheckConstraint:
    return models.CheckConstraint(
        condition=(
            models.Q(applicant_person__isnull=False, applicant_organization__isnull=True)
            | models.Q(applicant_person__isnull=True, applicant_organization__isnull=False)
        ),
        name=f"{prefix}_has_one_applicant",
    )


class Mandate(models.Model):
    """委托代办: a person (the principal, e.g. an elderly resident) lets a family member or
    another trusted person (the agent) apply online for them — for every service or for
    the ones chosen — from one date until another. Either the principal grants it online,
    or window staff record the signed paper form (授权委托书), whose number is kept."""

    class Status(models.TextChoices):
        ACTIVE = "active", _("In force")  # 有效
        WITHDRAWN = "withdrawn", _("Withdrawn")  # 已撤销

    principal = models.ForeignKey(
        Person,
        on_delete=models.PROTECT,
        related_name="mandates_given",
        verbose_name=_("principal"),
    )
    agent = models.ForeignKey(
        Person, on_delete=models.PROTECT, related_name="mandates_held", verbose_name=_("agent")
    )
    all_items = models.BooleanField(_("every service"), default=False)
    items = models.ManyToManyField(
        ServiceItem, blank=True, related_name="+", verbose_name=_("services")
    )
    # Conditional data (e.g. marriage records) is read only with consent; without this
    # flag the agent uploads those materials instead, as window staff do.
    may_consent = models.BooleanField(_("may agree to data reads"), default=False)
    valid_from = models.DateField(_("valid from"))
    valid_until = models.DateField(_("valid until"))
    status = models.CharField(
        _("status"), max_length=16, choices=Status.choices, default=Status.ACTIVE
    )
    withdrawn_at = models.DateTimeField(_("withdrawn at"), null=True, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    # The number of the signed paper form when window staff recorded it; empty when the
    # principal granted the mandate online themself.
    paper_reference = models.CharField(_("paper form number"), max_length=64, blank=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-pk"]
        verbose_name = _("mandate")
        verbose_name_plural = _("mandates")
        indexes = [
            models.Index(fields=["agent", "principal", "status"], name="mandate_agent_idx"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=~models.Q(principal=models.F("agent")), name="mandate_not_to_self"
            ),
            models.CheckConstraint(
                condition=models.Q(valid_until__gte=models.F("valid_from")),
                name="mandate_dates_ordered",
            ),
            models.CheckConstraint(
                condition=(
                    models.Q(status="active", withdrawn_at__isnull=True)
                    | models.Q(status="withdrawn", withdrawn_at__isnull=False)
                ),
                name="mandate_withdrawn_has_time",
            ),
        ]

    def __str__(self) -> str:
        return f"mandate {self.pk}"


class Submission(Applicant):
    """One press of "submit": a single item or a bundle (一件事). A retry with the same
    idempotency key finds this row instead of creating another."""

    bundle = models.ForeignKey(
        Bundle, on_delete=models.PROTECT, null=True, blank=True, related_name="submissions"
    )
    idempotency_key = models.CharField(_("idempotency key"), max_length=64)
    # 帮办代办: window staff applying for someone record the authorization they were shown
    # (e.g. the number of a signed 授权委托书); empty when applicants apply themselves.
    on_behalf_note = models.CharField(_("authorization"), max_length=200, blank=True)
    # 委托代办: the mandate under which a family member or trusted person applied.
    mandate = models.ForeignKey(
        Mandate,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="submissions",
        verbose_name=_("mandate"),
    )
    created_at = models.DateTimeField(_("submitted at"), auto_now_add=True)

    class Meta:
        verbose_name = _("submission")
        verbose_name_plural = _("submissions")
        indexes = [_organization_index("submission")]
        constraints = [
            _one_applicant("submission"),
            models.UniqueConstraint(
                fields=["submitted_by", "idempotency_key"], name="submission_idempotency_unique"
            ),
        ]

    def __str__(self) -> str:
        return f"submission {self.pk}"


class Case(Applicant):
    """办件: one application for one item, moving through the workflow."""

    class State(models.TextChoices):
        SUBMITTED = "submitted", _("Submitted")  # 已提交
        ACCEPTED = "accepted", _("Accepted")  # 已受理
        IN_REVIEW = "in_review", _("In review")  # 审查中
        SUPPLEMENT_REQUESTED = "supplement_requested", _("Supplement requested")  # 待补正
        DECIDED = "decided", _("Decided")  # 已决定
        COMPLETED = "completed", _("Completed")  # 已办结
        WITHDRAWN = "withdrawn", _("Withdrawn")  # 已撤回
        NOT_ACCEPTED = "not_accepted", _("Not accepted")  # 不予受理

    class Decision(models.TextChoices):
        APPROVED = "approved", _("Approved")  # 准予
        REJECTED = "rejected", _("Rejected")  # 不予

    # Unique by a constraint, not `unique=True`, which on PostgreSQL adds a second index for
    # LIKE searches that nothing makes and every bulk-opened case would pay for.
    number = models.CharField(_("case number"), max_length=32)
    # None for a case the platform opened itself, nobody having applied: a benefit granted
    # from the shared data (免申即享, see `cases.granted`).
    # Indexed where set (`Meta.indexes`), as `renews`: millions of granted cases leave them
    # null, and would each add an entry nobody looks up.
    submission = models.ForeignKey(
        Submission,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="cases",
        db_index=False,
    )
    item = models.ForeignKey(ServiceItem, on_delete=models.PROTECT, related_name="cases")
    # Copied from the item when submitted, so a later catalog change does not move the case.
    # Looked up through `case_queue_idx`, which starts with it.
    department = models.ForeignKey(
        Department,
        on_delete=models.PROTECT,
        related_name="cases",
        verbose_name=_("department"),
        db_index=False,
    )
    state = models.CharField(
        _("state"), max_length=24, choices=State.choices, default=State.SUBMITTED
    )
    form_data = models.JSONField(_("form"), default=dict, blank=True)
    # One entry per material: {"key", "name", "source": license|dataset|upload|missing,
    # "license": identifier, "dataset": code, "grant": id, "upload": id}.
    materials = models.JSONField(_("materials"), default=list)
    materials_fetched = models.PositiveSmallIntegerField(_("materials fetched"), default=0)
    materials_uploaded = models.PositiveSmallIntegerField(_("materials uploaded"), default=0)
    submitted_at = models.DateTimeField(_("submitted at"))
    due_at = models.DateField(_("due on"))
    due_provisional = models.BooleanField(default=False)
    paused_at = models.DateTimeField(_("paused at"), null=True, blank=True)
    supplement_note = models.TextField(_("supplement requested"), blank=True)
    decision = models.CharField(_("decision"), max_length=10, choices=Decision.choices, blank=True)
    decision_reason = models.TextField(_("reasons"), blank=True)
    decided_at = models.DateTimeField(_("decided at"), null=True, blank=True)
    decided_by = models.CharField(_("decided by"), max_length=255, blank=True)
    # The instant-approval rules' verdict (秒批): which conditions passed or failed and why,
    # as `rules.report_evaluate` wrote it; null when no rules were in force for the item.
    rule_report = models.JSONField(_("rule report"), null=True, blank=True)
    result_license = models.OneToOneField(
        License, on_delete=models.PROTECT, null=True, blank=True, related_name="case"
    )
    # 换证/延续: the applicant's license this case renews; the license it yields is the
    # next version of that one (its `predecessor`).
    renews = models.ForeignKey(
        License,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="renewal_cases",
        verbose_name=_("renews"),
        db_index=False,
    )
    closed_at = models.DateTimeField(_("closed at"), null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-submitted_at", "-pk"]
        verbose_name = _("case")
        verbose_name_plural = _("cases")
        indexes = [
            models.Index(fields=["department", "state", "due_at"], name="case_queue_idx"),
            models.Index(
                fields=["submission"],
                condition=models.Q(submission__isnull=False),
                name="case_submission_idx",
            ),
            models.Index(
                fields=["renews"], condition=models.Q(renews__isnull=False), name="case_renews_idx"
            ),
            _organization_index("case"),
        ]
        constraints = [
            _one_applicant("case"),
            models.UniqueConstraint(fields=["number"], name="case_number_unique"),
            models.CheckConstraint(
                condition=~models.Q(state="decided") | ~models.Q(decision=""),
                name="case_decided_has_decision",
            ),
        ]

    def __str__(self) -> str:
        return self.number


class CaseEvent(models.Model):
    """One step of a case's timeline, as the applicant and staff see it."""

    case = models.ForeignKey(Case, on_delete=models.CASCADE, related_name="events")
    at = models.DateTimeField(_("time"))
    actor = models.CharField(_("actor"), max_length=255)
    action = models.CharField(_("action"), max_length=40)
    from_state = models.CharField(max_length=24, blank=True)
    to_state = models.CharField(max_length=24, blank=True)
    note = models.TextField(_("note"), blank=True)

    class Meta:
        ordering = ["at", "pk"]
        verbose_name = _("case event")
        verbose_name_plural = _("case events")

    def __str__(self) -> str:
        return f"{self.case} {self.action}"


class Upload(models.Model):
    """A file the applicant uploaded for a material, stored outside the web root under a
    random name; only its metadata lives here."""

    # An upload is made before its submission exists; submitting attaches it. A bundle's
    # cases share the uploads of their submission, so `case` is set only for an upload
    # answering one case's supplement request.
    submission = models.ForeignKey(
        Submission, on_delete=models.CASCADE, null=True, blank=True, related_name="uploads"
    )
    case = models.ForeignKey(
        Case, on_delete=models.CASCADE, null=True, blank=True, related_name="uploads"
    )
    material_key = models.CharField(_("material"), max_length=64)
    stored_name = models.CharField(max_length=64, unique=True, editable=False)
    original_name = models.CharField(_("file name"), max_length=200)
    content_type = models.CharField(_("type"), max_length=50)
    size = models.PositiveIntegerField(_("size"))
    sha256 = models.CharField(max_length=64)
    uploaded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("upload")
        verbose_name_plural = _("uploads")

    def __str__(self) -> str:
        return self.original_name


class Evaluation(models.Model):
    """好差评: the applicant's 5-level rating of a closed case (GB/T 39735)."""

    case = models.OneToOneField(Case, on_delete=models.PROTECT, related_name="evaluation")
    level = models.PositiveSmallIntegerField(_("rating"))
    comment = models.TextField(_("comment"), blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("evaluation")
        verbose_name_plural = _("evaluations")
        constraints = [
            models.CheckConstraint(
                condition=models.Q(level__gte=1, level__lte=5), name="evaluation_level_1_to_5"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.case} {self.level}"


class Notification(models.Model):
    """An in-app message to an applicant's account about one of their cases (站内消息);
    the same text may also go out by SMS or email through the notification backend."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="notifications"
    )
    case = models.ForeignKey(
        Case, on_delete=models.CASCADE, null=True, blank=True, related_name="notifications"
    )
    event = models.CharField(_("event"), max_length=32)
    text = models.TextField(_("message"))
    # Where to act on the message (a path of this site), e.g. to renew an expiring license.
    link = models.CharField(_("link"), max_length=200, blank=True)
    created_at = models.DateTimeField(_("sent at"), auto_now_add=True)
    read_at = models.DateTimeField(_("read at"), null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-pk"]
        verbose_name = _("notification")
        verbose_name_plural = _("notifications")
        indexes = [models.Index(fields=["user", "read_at"], name="notification_unread_idx")]

    def __str__(self) -> str:
        return f"{self.user_id} {self.event}"


class ExpiryReminder(models.Model):
    """到期提醒: one reminder step sent about one expiring license (e.g. 30 days before),
    recorded so that no step is sent twice; at the step where the platform applied for the
    renewal on the holder's behalf, the case it opened."""

    license = models.ForeignKey(License, on_delete=models.PROTECT, related_name="expiry_reminders")
    days_before = models.PositiveSmallIntegerField(_("days before expiry"))
    sent_on = models.DateField(_("sent on"))
    recipients = models.PositiveSmallIntegerField(_("accounts told"), default=0)
    renewal_case = models.OneToOneField(
        Case,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="expiry_reminder",
        verbose_name=_("renewal case"),
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["license", "-days_before"]
        verbose_name = _("expiry reminder")
        verbose_name_plural = _("expiry reminders")
        constraints = [
            models.UniqueConstraint(
                fields=["license", "days_before"], name="expiry_reminder_step_once"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.license_id} -{self.days_before}d"
