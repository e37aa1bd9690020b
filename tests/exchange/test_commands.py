"""`tongban exchange credential`: a data administrator creates, lists, rotates and revokes
department systems' API tokens; a token is printed once and never listed."""

import hashlib
import io

import pytest
from django.core.management import CommandError, call_command
from django.test import Client

from tests.people.factories import make_department, make_user
from tongban.audit.models import AuditEntry
from tongban.exchange.models import MachineCredential
from tongban.people.models import User

pytestmark = pytest.mark.django_db


def run(*args: str) -> tuple[str, str]:
    out, err = io.StringIO(), io.StringIO()
    call_command("exchange", "credential", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


@pytest.fixture
def admin():
    make_department(code="civil_affairs_test", name="民政局")
    return make_user(username="dataadmin", role=User.Role.DATA_ADMIN)


def authenticates(token: str) -> int:
    """The status the API gives this token (a catalog read: no grant needed)."""
    client = Client(headers={"authorization": f"Bearer {token}"})
    return client.get("/api/v1/exchange/datasets").status_code


def test_create_prints_the_token_once_with_a_warning(admin):
    options = ["--days", "30", "--rate-limit", "120", "--by", "dataadmin"]
    out, err = run("create", "civil_affairs_test", "救助审核系统", *options)

    credential = MachineCredential.objects.get()
    summary, token = out.splitlines()
    assert summary.startswith(f"key ID {credential.key_id} for civil_affairs_test · 救助审核系统")
    assert summary.endswith("120 calls a minute")
    assert token.startswith(f"tbx_{credential.key_id}_")
    assert "not stored" in err
    secret = token.split("_", 2)[2]
    assert credential.secret_hash == hashlib.sha256(secret.encode()).hexdigest()  # only a digest
    lifetime = credential.expires_at - credential.created_at
    assert (credential.rate_limit, round(lifetime.total_seconds() / 86400)) == (120, 30)
    assert AuditEntry.objects.filter(
        action="credential.create", actor__endswith="dataadmin"
    ).count()
    assert authenticates(token) == 200


def test_list_shows_every_credential_and_never_a_secret(admin):
    out, _err = run("create", "civil_affairs_test", "系统甲", "--by", "dataadmin")
    token = out.splitlines()[1]
    first = MachineCredential.objects.get()
    run("create", "civil_affairs_test", "系统乙", "--by", "dataadmin")
    run("revoke", first.key_id, "--by", "dataadmin")

    listing, _err = run("list", "--by", "dataadmin")

    header, *rows = listing.splitlines()
    assert header.split() == [
        "KEY",
        "ID",
        "DEPARTMENT",
        "NAME",
        "EXPIRES",
        "LAST",
        "USED",
        "STATUS",
    ]
    assert sorted((row.split()[2], row.split()[-1]) for row in rows) == [
        ("系统乙", "active"),
        ("系统甲", "revoked"),
    ]
    assert token.split("_", 2)[2] not in listing
    assert first.secret_hash not in listing


def test_rotate_keeps_the_old_token_for_the_grace_day_and_revoke_stops_at_once(admin):
    out, _err = run("create", "civil_affairs_test", "系统", "--by", "dataadmin")
    old_token = out.splitlines()[1]
    old = MachineCredential.objects.get()

    rotated, err = run("rotate", old.key_id, "--by", "dataadmin")

    new = MachineCredential.objects.exclude(pk=old.pk).get()
    notice, summary, new_token = rotated.splitlines()
    assert notice.startswith(f"{old.key_id} keeps working until ")
    assert summary.startswith(f"key ID {new.key_id} for civil_affairs_test")
    assert new_token.startswith(f"tbx_{new.key_id}_") and "not stored" in err
    assert (authenticates(old_token), authenticates(new_token)) == (200, 200)
    assert "rotated" in run("list", "--by", "dataadmin")[0]

    run("revoke", new.key_id, "--by", "dataadmin")

    assert authenticates(new_token) == 401
    with pytest.raises(CommandError, match="exchange_input_invalid"):
        run("rotate", old.key_id, "--by", "dataadmin")


@pytest.mark.parametrize("role", [User.Role.STAFF, User.Role.CITIZEN])
def test_only_data_or_system_administrators_may_act(admin, role):
    make_user(username="someone", role=role)
    before = (MachineCredential.objects.count(), AuditEntry.objects.count())

    with pytest.raises(CommandError, match="not an active data or system administrator"):
        run("create", "civil_affairs_test", "系统", "--by", "someone")
    with pytest.raises(CommandError, match="not an active data or system administrator"):
        run("list", "--by", "nobody")

    assert (MachineCredential.objects.count(), AuditEntry.objects.count()) == before


def test_a_system_administrator_may_act_too(admin):
    make_user(username="sysadmin", role=User.Role.SYS_ADMIN)
    out, _err = run("create", "civil_affairs_test", "系统", "--by", "sysadmin")
    assert out.splitlines()[1].startswith("tbx_")


def test_bad_arguments_are_refused_and_change_nothing(admin):
    before = (MachineCredential.objects.count(), AuditEntry.objects.count())

    with pytest.raises(CommandError, match="department_not_found"):
        run("create", "nowhere", "系统", "--by", "dataadmin")
    with pytest.raises(CommandError, match="exchange_input_invalid"):
        run("create", "civil_affairs_test", "系统", "--days", "0", "--by", "dataadmin")
    with pytest.raises(CommandError, match="no credential has key ID"):
        run("revoke", "0000000000000000", "--by", "dataadmin")
    with pytest.raises(CommandError):
        run("create", "civil_affairs_test", "系统")  # --by is required

    assert (MachineCredential.objects.count(), AuditEntry.objects.count()) == before
