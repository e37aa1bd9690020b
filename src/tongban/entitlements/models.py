"""Entitlements granted without an application (免申即享): each sweep of a rule over the
population (`EntitlementRun`) and what each person holds (`Entitlement`). The rules
themselves are data (`rules.yaml`), named here by their code and version."""

from django.db import models
from django.utils.translation import gettext_lazy as _

from tongban.cases.models import Case
from tongban.people.models import Person


class EntitlementRun(models.Model):
    """One run of one rule over the population, or a dry run that only counts. A run
    commits bucket by bucket, adding each bucket's counts here; it is finished when all
    are (`finished_at`), and one that stopped part way (an error, a restart) says so."""

    rule_code = models.CharField(_("rule"), max_length=40)
    rule_version = models.CharField(_("rule version"), max_length=20)
    evaluated_on = models.DateField(_("evaluated on"))
    dry_run = models.BooleanField(_("dry run"), default=False)
    actor = models.CharField(_("run by"), max_length=255)
    started_at = models.DateTimeField(_("started at"))
    finished_at = models.DateTimeField(_("finished at"), null=True, blank=True)
    persons = models.PositiveIntegerField(_("people evaluated"), default=0)
    eligible = models.PositiveIntegerField(_("eligible"), default=0)
    granted = models.PositiveIntegerField(_("newly granted"), default=0)
    to_review = models.PositiveIntegerField(_("sent to review"), default=0)
    revalued = models.PositiveIntegerField(_("amount updated"), default=0)
    unchanged = models.PositiveIntegerField(_("unchanged"), default=0)
    declined = models.PositiveIntegerField(_("eligible but declined"), default=0)

    class Meta:
        ordering = ["-started_at", "-pk"]
        verbose_name = _("entitlement run")
        verbose_name_plural = _("entitlement runs")

    def __str__(self) -> str:
        return f"{self.rule_code}@{self.rule_version} {self.started_at:%Y-%m-%d %H:%M}"

    @property
    def counts(self) -> dict[str, int]:
        return {
            "persons": self.persons,
            "eligible": self.eligible,
            "granted": self.granted,
            "to_review": self.to_review,
            "revalued": self.revalued,
            "unchanged": self.unchanged,
            "declined": self.declined,
        }


class Entitlement(models.Model):
    """A benefit a person holds under a rule (one per person and rule), with the facts and
    the per-condition explanation that made them eligible."""

    class Status(models.TextChoices):
        GRANTED = "granted", _("Granted")  # 已享受
        DECLINED = "declined", _("Declined")  # 已放弃
        REVIEW = "review", _("Under review")  # 待复核 (no longer meets the conditions)
        ENDED = "ended", _("Ended")  # 已终止

    # Looked up through `entitlement_one_per_person_rule`, which starts with it.
    person = models.ForeignKey(
        Person,
        on_delete=models.PROTECT,
        related_name="entitlements",
        verbose_name=_("person"),
        db_index=False,
    )
    rule_code = models.CharField(_("rule"), max_length=40)
    rule_version = models.CharField(_("rule version"), max_length=20)
    status = models.CharField(_("status"), max_length=10, choices=Status.choices)
    amount = models.DecimalField(_("monthly amount"), max_digits=10, decimal_places=2)
    # The single-person report: each condition, what was observed and its legal reference.
    facts = models.JSONField(_("facts and explanation"))
    granted_at = models.DateTimeField(_("granted at"))
    granted_by_run = models.ForeignKey(
        EntitlementRun, on_delete=models.PROTECT, related_name="+", verbose_name=_("run")
    )
    # The case (办件) the grant is, with its number, department and timeline. A run reserves
    # its id with the grant and opens it after (`services.grant_cases_open`): until then no
    # row has the id, so the database does not hold it to a key (`case_or_none`); nothing
    # else takes a reserved id, and deleting a case is still refused while a grant names it.
    case = models.OneToOneField(
        Case,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        db_constraint=False,
        related_name="entitlement",
        verbose_name=_("case"),
    )
    declined_at = models.DateTimeField(_("declined at"), null=True, blank=True)
    review_at = models.DateTimeField(_("sent to review at"), null=True, blank=True)
    ended_at = models.DateTimeField(_("ended at"), null=True, blank=True)

    class Meta:
        ordering = ["-granted_at", "-pk"]
        verbose_name = _("entitlement")
        verbose_name_plural = _("entitlements")
        constraints = [
            models.UniqueConstraint(
                fields=["person", "rule_code"], name="entitlement_one_per_person_rule"
            ),
            models.CheckConstraint(
                condition=models.Q(status__in=["granted", "declined", "review", "ended"]),
                name="entitlement_status_valid",
            ),
        ]
        indexes = [models.Index(fields=["rule_code", "status"], name="entitlement_rule_idx")]

    def __str__(self) -> str:
        return f"{self.person_id} {self.rule_code} {self.status}"

    def case_or_none(self) -> Case | None:
        """The grant's case, or None while it is not opened yet."""
        try:
            return self.case
        except Case.DoesNotExist:
            return None


class Verification(models.Model):
    """静默认证: whether a holder of a benefit still qualifies in a period (a year), found in
    activity data without asking them, or — with no such data — confirmed by them (or an
    agent) when asked; unconfirmed past the deadline, their benefit goes to staff review."""

    class Status(models.TextChoices):
        VERIFIED = "verified", _("Verified from data")  # 已静默认证
        ASKED = "asked", _("Asked to confirm")  # 待本人确认
        CONFIRMED = "confirmed", _("Confirmed")  # 已确认
        OVERDUE = "overdue", _("Not confirmed in time")  # 逾期，转人工复核

    class Method(models.TextChoices):
        SIGNAL = "signal", _("Activity data")  # 数据比对
        SELF_CONFIRMED = "self_confirmed", _("Confirmed by the person")  # 本人确认
        AGENT_CONFIRMED = "agent_confirmed", _("Confirmed by their agent")  # 代办人确认

    person = models.ForeignKey(
        Person, on_delete=models.PROTECT, related_name="verifications", verbose_name=_("person")
    )
    rule_code = models.CharField(_("rule"), max_length=40)
    period = models.CharField(_("period"), max_length=10)  # the year, e.g. "2026"
    status = models.CharField(_("status"), max_length=10, choices=Status.choices)
    method = models.CharField(_("method"), max_length=16, choices=Method.choices, blank=True)
    # The activity that verified them: its dataset and the latest date seen.
    signal_dataset = models.CharField(_("signal dataset"), max_length=64, blank=True)
    signal_date = models.DateField(_("signal date"), null=True, blank=True)
    checked_on = models.DateField(_("checked on"))
    asked_at = models.DateTimeField(_("asked at"), null=True, blank=True)
    deadline = models.DateField(_("confirm by"), null=True, blank=True)
    confirmed_at = models.DateTimeField(_("confirmed at"), null=True, blank=True)
    confirmed_by = models.ForeignKey(
        "people.User",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("confirmed by"),
    )
    updated_at = models.DateTimeField(_("updated at"))

    class Meta:
        ordering = ["-updated_at", "-pk"]
        verbose_name = _("verification")
        verbose_name_plural = _("verifications")
        constraints = [
            models.UniqueConstraint(
                fields=["person", "rule_code", "period"], name="verification_one_per_period"
            ),
            models.CheckConstraint(
                condition=models.Q(status__in=["verified", "asked", "confirmed", "overdue"]),
                name="verification_status_valid",
            ),
        ]
        indexes = [
            models.Index(fields=["rule_code", "period", "status"], name="verification_period_idx")
        ]

    def __str__(self) -> str:
        return f"{self.person_id} {self.rule_code} {self.period} {self.status}"
