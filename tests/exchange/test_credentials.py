"""Machine credentials over HTTP: only a token in force, sent as a Bearer header, lets a
department's system in; every other token is a 401 credential_invalid with a challenge,
and nothing is read or logged."""

import datetime as dt
from unittest import mock

import pytest
from django.core.cache import cache
from django.test import Client
from django.utils import timezone

from tests.exchange.factories import load_datasets, make_grant, put_rows
from tests.people.factories import make_department, make_user, valid_resident_id
from tongban.audit.models import AuditEntry
from tongban.exchange import services
from tongban.exchange.models import MachineCredential
from tongban.people.models import User

pytestmark = pytest.mark.django_db

URL = "/api/v1/exchange/query"
RID = valid_resident_id(birth=dt.date(1985, 5, 17), n=3)
QUERY = {
    "dataset": "population",
    "subject": RID,
    "fields": ["name"],
    "purpose": "service_handling",
    "legal_basis": "《政务信息资源共享管理暂行办法》",
}
CHALLENGE = 'Bearer realm="tongban", error="invalid_token"'


@pytest.fixture(autouse=True)
def _fresh_rate_windows():
    cache.clear()


@pytest.fixture
def admin():
    return make_user(role=User.Role.DATA_ADMIN)


@pytest.fixture
def consumer():
    population = load_datasets("population")["population"]
    put_rows(population, {"resident_id": RID, "name": "李娜"})
    department = make_department(code="civil_affairs_test", name="民政局")
    make_grant(consumer=department, dataset=population, fields=["name"])
    return department


def ask(authorization=None, *, path=URL):
    headers = {"authorization": authorization} if authorization is not None else {}
    return Client(headers=headers).post(path, QUERY, content_type="application/json")


def assert_refused(response, code="credential_invalid"):
    assert (response.status_code, response.json()["code"]) == (401, code), response.content
    if code == "credential_invalid":
        assert response["WWW-Authenticate"] == CHALLENGE


def test_a_token_in_force_is_let_in_and_its_use_recorded(consumer, admin):
    credential, token = services.credential_create(department=consumer, name="系统", actor=admin)
    assert credential.last_used_at is None

    response = ask(f"Bearer {token}")

    assert response.status_code == 200, response.content
    credential.refresh_from_db()
    assert credential.last_used_at is not None
    assert ask(f"bearer {token}").status_code == 200  # the scheme is case-insensitive


@pytest.mark.parametrize(
    "authorization",
    [
        "Bearer",
        "Bearer ",
        "Bearer tbx_",
        "Bearer tbx_0123456789abcdef",
        "Bearer xyz_0123456789abcdef_secret",
        "Bearer tbx_0000000000000000_secret",
        "Bearer {token}x",
        "Bearer {key_id}",
    ],
)
def test_malformed_unknown_or_wrong_tokens_are_refused(consumer, admin, authorization):
    credential, token = services.credential_create(department=consumer, name="系统", actor=admin)
    before = AuditEntry.objects.count()

    response = ask(authorization.format(token=token, key_id=credential.key_id))

    assert_refused(response)
    assert AuditEntry.objects.count() == before


def test_no_bearer_token_and_a_token_in_the_query_string_are_not_authenticated(consumer, admin):
    _credential, token = services.credential_create(department=consumer, name="系统", actor=admin)
    before = AuditEntry.objects.count()

    assert_refused(ask(), "not_authenticated")
    assert_refused(ask("Basic dXNlcjpwYXNz"), "not_authenticated")  # not our scheme
    assert_refused(ask(f"Token {token}"), "not_authenticated")
    assert_refused(ask(path=f"{URL}?access_token={token}"), "not_authenticated")
    assert_refused(ask(path=f"{URL}?token={token}"), "not_authenticated")
    assert AuditEntry.objects.count() == before


def test_expired_and_revoked_tokens_are_refused(consumer, admin):
    expired, expired_token = services.credential_create(
        department=consumer, name="旧系统", actor=admin, days=1
    )
    revoked, revoked_token = services.credential_create(
        department=consumer, name="停用系统", actor=admin
    )
    MachineCredential.objects.filter(pk=expired.pk).update(
        expires_at=timezone.now() - dt.timedelta(seconds=1)
    )
    services.credential_revoke(credential=revoked, actor=admin)
    before = AuditEntry.objects.count()

    assert_refused(ask(f"Bearer {expired_token}"))
    assert_refused(ask(f"Bearer {revoked_token}"))
    assert AuditEntry.objects.count() == before


def test_a_rotated_token_works_through_the_grace_day_then_not(consumer, admin):
    # Given a token that is rotated
    old, old_token = services.credential_create(department=consumer, name="系统", actor=admin)
    new, new_token = services.credential_rotate(credential=old, actor=admin)
    # Then both work at first, the new one as its own credential
    assert ask(f"Bearer {old_token}").status_code == 200
    answer = ask(f"Bearer {new_token}").json()
    assert AuditEntry.objects.get(seq=answer["audit_seq"]).actor == (
        f"credential:{new.key_id}:civil_affairs_test"
    )
    # When the grace day has passed, only the new one works
    later = timezone.now() + services.ROTATION_GRACE + dt.timedelta(minutes=1)
    with mock.patch("django.utils.timezone.now", return_value=later):
        assert_refused(ask(f"Bearer {old_token}"))
        assert ask(f"Bearer {new_token}").status_code == 200


@pytest.mark.parametrize("days", [1, 90, services.CREDENTIAL_DAYS])
def test_a_rotated_token_lasts_as_long_as_the_one_it_replaces(consumer, admin, days):
    old, _token = services.credential_create(
        department=consumer, name="系统", actor=admin, days=days
    )
    new, _new_token = services.credential_rotate(credential=old, actor=admin)
    lifetime = new.expires_at - new.created_at
    assert abs(lifetime - dt.timedelta(days=days)) < dt.timedelta(seconds=5)


def test_a_revoked_department_grant_stops_the_credential_too(consumer, admin):
    _credential, token = services.credential_create(department=consumer, name="系统", actor=admin)
    grant = consumer.access_grants.get()
    services.grant_revoke(grant=grant, actor=admin, note="停止共享")
    before = AuditEntry.objects.count()

    response = ask(f"Bearer {token}")

    assert (response.status_code, response.json()["code"]) == (403, "grant_revoked")
    assert AuditEntry.objects.count() == before
