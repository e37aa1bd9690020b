"""People, organizations, departments and accounts (自然人, 法人, 部门, 账号)."""

from django.contrib.auth.models import AbstractUser
from django.db import models
from django.utils.translation import gettext_lazy as _

from tongban.core.ids import mask_id


class Person(models.Model):
    """A natural person (自然人), identified by resident ID number (GB 11643)."""

    class Sex(models.TextChoices):
        MALE = "M", _("Male")
        FEMALE = "F", _("Female")

    resident_id = models.CharField(_("resident ID number"), max_length=18, unique=True)
    name = models.CharField(_("name"), max_length=64)
    birth_date = models.DateField(_("birth date"))
    sex = models.CharField(_("sex"), max_length=1, choices=Sex.choices)
    division_code = models.CharField(
        _("household registration division"), max_length=12, help_text=_("GB/T 2260 code")
    )
    phone = models.CharField(_("phone"), max_length=20, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("person")
        verbose_name_plural = _("people")
        constraints = [
            models.CheckConstraint(condition=models.Q(sex__in=["M", "F"]), name="person_sex_valid"),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.masked_id})"

    @property
    def masked_id(self) -> str:
        return mask_id(self.resident_id)


class Organization(models.Model):
    """A legal entity (法人) identified by its unified social credit code (GB 32100)."""

    class Kind(models.TextChoices):
        ENTERPRISE = "enterprise", _("Enterprise")
        SOLE_PROPRIETOR = "sole_proprietor", _("Individual business")
        INSTITUTION = "institution", _("Public institution")
        SOCIAL = "social", _("Social organization")

    credit_code = models.CharField(_("unified social credit code"), max_length=18, unique=True)
    name = models.CharField(_("name"), max_length=128)
    kind = models.CharField(_("kind"), max_length=20, choices=Kind.choices)
    legal_representative = models.ForeignKey(
        Person,
        on_delete=models.PROTECT,
        related_name="represented_organizations",
        verbose_name=_("legal representative"),
    )
    division_code = models.CharField(_("registration division"), max_length=12)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("organization")
        verbose_name_plural = _("organizations")

    def __str__(self) -> str:
        return self.name


class Department(models.Model):
    """A government body (政府部门) that implements service items and holds data."""

    code = models.SlugField(_("code"), max_length=32, unique=True)
    credit_code = models.CharField(_("unified social credit code"), max_length=18, unique=True)
    name = models.CharField(_("name"), max_length=64)
    name_en = models.CharField(_("English name"), max_length=128, blank=True)
    region_code = models.CharField(_("region code"), max_length=12)
    parent = models.ForeignKey(
        "self",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="children",
        verbose_name=_("parent"),
    )
    address = models.CharField(_("address"), max_length=200, blank=True)
    phone = models.CharField(_("phone"), max_length=32, blank=True)

    class Meta:
        verbose_name = _("department")
        verbose_name_plural = _("departments")
        ordering = ["code"]

    def __str__(self) -> str:
        return self.name


class User(AbstractUser):
    """An account. Its role decides what it may do; links say on whose behalf."""

    class Role(models.TextChoices):
        CITIZEN = "citizen", _("Citizen")
        ORG_AGENT = "org_agent", _("Organization agent")
        STAFF = "staff", _("Department staff")
        DATA_ADMIN = "data_admin", _("Data administrator")
        SYS_ADMIN = "sys_admin", _("System administrator")

    role = models.CharField(_("role"), max_length=16, choices=Role.choices, default=Role.CITIZEN)
    person = models.ForeignKey(
        Person, on_delete=models.PROTECT, null=True, blank=True, related_name="accounts"
    )
    organization = models.ForeignKey(
        Organization, on_delete=models.PROTECT, null=True, blank=True, related_name="agents"
    )
    department = models.ForeignKey(
        Department, on_delete=models.PROTECT, null=True, blank=True, related_name="staff"
    )
    failed_logins = models.PositiveSmallIntegerField(default=0)
    locked_until = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = _("account")
        verbose_name_plural = _("accounts")
        constraints = [
            models.CheckConstraint(
                condition=~models.Q(role="staff") | models.Q(department__isnull=False),
                name="staff_has_department",
            ),
            models.CheckConstraint(
                condition=~models.Q(role="org_agent") | models.Q(organization__isnull=False),
                name="org_agent_has_organization",
            ),
        ]

    @property
    def requires_totp(self) -> bool:
        """Staff and administrators must use a second factor (TOTP). So must anyone who may
        enter the Django admin, whatever their role (e.g. a `createsuperuser` account)."""
        return (
            self.role in {self.Role.STAFF, self.Role.DATA_ADMIN, self.Role.SYS_ADMIN}
            or self.is_staff
            or self.is_superuser
        )
