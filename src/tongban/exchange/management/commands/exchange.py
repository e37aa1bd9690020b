"""`tongban exchange`: manage the machine credentials department systems call the exchange with.

tongban exchange credential create DEPT_CODE NAME [--days N] [--rate-limit N] --by USERNAME
tongban exchange credential rotate KEY_ID --by USERNAME
tongban exchange credential revoke KEY_ID --by USERNAME
tongban exchange credential list --by USERNAME

--by names the data administrator (or system administrator) who acts: the services check
their role and the audit log records them. A new token is printed once and never stored.
"""

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from tongban.core.errors import TongbanError
from tongban.exchange import selectors, services
from tongban.exchange.models import MachineCredential
from tongban.people import selectors as people_selectors
from tongban.people.models import User


class Command(BaseCommand):
    help = "Manage machine credentials (API tokens) of department systems."

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(dest="subject", required=True)
        credential = sub.add_parser("credential", help="API tokens of department systems")
        actions = credential.add_subparsers(dest="action", required=True)
        create = actions.add_parser("create", help="a new token (shown once)")
        create.add_argument("department", metavar="DEPT_CODE")
        create.add_argument("name", metavar="NAME", help="the calling system's name")
        create.add_argument("--days", type=int, default=services.CREDENTIAL_DAYS)
        create.add_argument("--rate-limit", type=int, default=600, help="calls per minute")
        rotate = actions.add_parser("rotate", help="a new token; the old one works a day more")
        rotate.add_argument("key_id", metavar="KEY_ID")
        revoke = actions.add_parser("revoke", help="stop a token at once")
        revoke.add_argument("key_id", metavar="KEY_ID")
        listing = actions.add_parser("list", help="every credential, never a secret")
        for action in (create, rotate, revoke, listing):
            action.add_argument(
                "--by",
                required=True,
                metavar="USERNAME",
                help="the data administrator who acts (recorded in the audit log)",
            )

    def handle(self, *args: Any, **options: Any) -> None:
        actor = self.actor(options["by"])
        try:
            getattr(self, f"{options['subject']}_{options['action']}")(actor, options)
        except TongbanError as exc:
            raise CommandError(f"{exc.code}: {exc.message}") from exc

    def actor(self, username: str) -> User:
        user = User.objects.filter(username=username, is_active=True).first()
        if user is None or user.role not in (User.Role.DATA_ADMIN, User.Role.SYS_ADMIN):
            raise CommandError(f"{username!r} is not an active data or system administrator")
        return user

    def credential_get(self, key_id: str) -> MachineCredential:
        credential = (
            MachineCredential.objects.select_related("department").filter(key_id=key_id).first()
        )
        if credential is None:
            raise CommandError(f"no credential has key ID {key_id!r}")
        return credential

    def credential_create(self, actor: User, options: dict[str, Any]) -> None:
        credential, token = services.credential_create(
            department=people_selectors.department_get(code=options["department"]),
            name=options["name"],
            actor=actor,
            days=options["days"],
            rate_limit=options["rate_limit"],
        )
        self.issued(credential, token)

    def credential_rotate(self, actor: User, options: dict[str, Any]) -> None:
        old = self.credential_get(options["key_id"])
        credential, token = services.credential_rotate(credential=old, actor=actor)
        old.refresh_from_db()
        self.stdout.write(f"{old.key_id} keeps working until {self.when(old.expires_at)}")
        self.issued(credential, token)

    def credential_revoke(self, actor: User, options: dict[str, Any]) -> None:
        credential = services.credential_revoke(
            credential=self.credential_get(options["key_id"]), actor=actor
        )
        self.stdout.write(f"revoked {credential.key_id} at {self.when(credential.revoked_at)}")

    def credential_list(self, actor: User, options: dict[str, Any]) -> None:
        rows = [("KEY ID", "DEPARTMENT", "NAME", "EXPIRES", "LAST USED", "STATUS")]
        now = timezone.now()
        for c in selectors.credentials_list(user=actor):
            rows.append(
                (
                    c.key_id,
                    c.department.code,
                    c.name,
                    self.when(c.expires_at),
                    self.when(c.last_used_at),
                    self.status(c, now),
                )
            )
        widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
        for row in rows:
            self.stdout.write("  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)))

    def issued(self, credential: MachineCredential, token: str) -> None:
        self.stdout.write(
            f"key ID {credential.key_id} for {credential.department.code} · {credential.name}, "
            f"valid until {self.when(credential.expires_at)}, "
            f"{credential.rate_limit} calls a minute"
        )
        self.stdout.write(token)
        self.stderr.write(
            "warning: this token is shown once and is not stored; put it in the calling "
            "system's secret store now"
        )

    @staticmethod
    def when(moment: Any) -> str:
        return timezone.localtime(moment).strftime("%Y-%m-%d %H:%M") if moment else "-"

    @staticmethod
    def status(credential: MachineCredential, now: Any) -> str:
        if credential.revoked_at is not None:
            return "revoked"
        if credential.expires_at <= now:
            return "expired"
        if credential.replaced_by_id is not None:
            return "rotated"  # still accepted until it expires, at most a day
        return "active"
