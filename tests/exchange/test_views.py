"""The exchange's pages: each opens for its role only, refused posts change nothing, and the
grant, query, access-log, consent and credential flows work through the forms."""

import datetime as dt
import re

import pytest
from django.utils import timezone

from tests.exchange.factories import load_datasets, make_grant, put_rows
from tests.people.factories import (
    login_verified,
    make_department,
    make_person,
    make_user,
    valid_resident_id,
)
from tongban.audit.models import AuditEntry
from tongban.exchange import services
from tongban.exchange.models import AccessGrant, MachineCredential
from tongban.licensing.models import Consent

pytestmark = pytest.mark.django_db

RID = valid_resident_id(birth=dt.date(1985, 5, 17), n=3)
OTHER_RID = valid_resident_id(birth=dt.date(1979, 2, 1), sex="F", n=4)
LEGAL_BASIS = "《社会救助暂行办法》第十一条"


def _row(resident_id: str, name: str, address: str) -> dict:
    return {
        "resident_id": resident_id,
        "name": name,
        "sex": "女",
        "birth_date": f"{resident_id[6:10]}-{resident_id[10:12]}-{resident_id[12:14]}",
        "ethnicity": "汉",
        "division_code": "370102",
        "address": address,
        "registered_since": "2001-09-01",
        "alive": True,
    }


class World:
    def __init__(self) -> None:
        self.datasets = load_datasets("population", "minimum_living", "criminal_record")
        put_rows(
            self.datasets["population"],
            _row(RID, "李娜", "演示市历下区泉城路1号"),
            _row(OTHER_RID, "王芳", "演示市市中区经四路9号"),
        )
        self.consumer = make_department(code="hrss_test", name="演示市人力资源和社会保障局")
        self.staff = make_user(role="staff", department=self.consumer)
        self.admin = make_user(role="data_admin")
        self.citizen = make_user(role="citizen", person=make_person(resident_id=RID, name="李娜"))
        self.other = make_user(
            role="citizen", person=make_person(resident_id=OTHER_RID, name="王芳", sex="F")
        )
        self.caller = services.Caller(self.consumer, "system:test", 1000)

    def query(self, subject: str = RID, legal_basis: str = LEGAL_BASIS) -> dict:
        return services.data_query(
            caller=self.caller,
            dataset_code="population",
            subject=subject,
            fields=["name", "address"],
            purpose="service_handling",
            legal_basis=legal_basis,
        )


@pytest.fixture
def world() -> World:
    return World()


@pytest.fixture
def english(client):
    client.cookies["django_language"] = "en"
    return client


def _in_days(days: int) -> str:
    return (timezone.localdate() + dt.timedelta(days=days)).isoformat()


# --- who may open what ----------------------------------------------------------------


STAFF_PAGES = ["/exchange/", "/exchange/datasets/population/", "/exchange/grants/"]
QUERY_PAGE = "/exchange/query/"
ADMIN_PAGES = ["/exchange/stats/", "/exchange/credentials/"]
HOLDER_PAGES = ["/exchange/my/", "/exchange/my/consents/"]


def test_each_page_opens_for_its_roles(client, world):
    login_verified(client, world.staff)
    for url in [*STAFF_PAGES, QUERY_PAGE]:
        assert client.get(url).status_code == 200, url
    login_verified(client, world.admin)
    for url in [*STAFF_PAGES, *ADMIN_PAGES]:
        assert client.get(url).status_code == 200, url
    client.force_login(world.citizen)  # citizens log in without a one-time code
    for url in HOLDER_PAGES:
        assert client.get(url).status_code == 200, url
    agent = make_user(role="org_agent")
    client.force_login(agent)
    for url in HOLDER_PAGES:
        assert client.get(url).status_code == 200, url


def test_anonymous_visitors_are_sent_to_log_in(client, world):
    for url in [*STAFF_PAGES, QUERY_PAGE, *ADMIN_PAGES, *HOLDER_PAGES]:
        response = client.get(url)
        assert response.status_code == 302 and "/account/login/" in response["Location"], url


def test_staff_and_admins_need_a_verified_session(client, world):
    # The right role without the one-time code logs in again; a wrong role is refused.
    client.force_login(world.staff)
    for url in [*STAFF_PAGES, QUERY_PAGE]:
        assert client.get(url).status_code == 302, url
    for url in ADMIN_PAGES:
        assert client.get(url).status_code == 403, url
    client.force_login(world.admin)
    for url in [*STAFF_PAGES, *ADMIN_PAGES]:
        assert client.get(url).status_code == 302, url


def test_other_roles_are_refused(client, world):
    login_verified(client, world.citizen)
    for url in [*STAFF_PAGES, QUERY_PAGE, *ADMIN_PAGES]:
        response = client.get(url)
        assert response.status_code == 403 and b"role_not_allowed" in response.content, url
    login_verified(client, world.staff)
    for url in [*ADMIN_PAGES, *HOLDER_PAGES]:
        assert client.get(url).status_code == 403, url
    login_verified(client, world.admin)
    for url in [QUERY_PAGE, *HOLDER_PAGES]:
        assert client.get(url).status_code == 403, url


def test_refused_posts_change_nothing(client, world):
    grant = make_grant(
        consumer=world.consumer,
        dataset=world.datasets["population"],
        fields=["name"],
        status="requested",
    )
    audit_before = AuditEntry.objects.count()
    # Staff cannot decide on grants, nor make credentials.
    login_verified(client, world.staff)
    for action in ("approve", "reject"):
        url = f"/exchange/grants/{grant.pk}/{action}/"
        assert client.post(url, {"reject-note": "x"}).status_code == 403
    department = world.consumer.code
    credential = {"department": department, "name": "sys", "days": 30, "rate_limit": 10}
    assert client.post("/exchange/credentials/", credential).status_code == 403
    # A data administrator cannot request grants or consent for someone.
    login_verified(client, world.admin)
    request = {
        "mode": "query",
        "data_fields": ["name"],
        "purpose": "service_handling",
        "legal_basis": LEGAL_BASIS,
        "valid_until": _in_days(30),
    }
    assert client.post("/exchange/datasets/population/request/", request).status_code == 403
    consent = {
        "dataset": "minimum_living",
        "department": department,
        "purpose": "social_assistance",
        "valid_until": _in_days(30),
    }
    assert client.post("/exchange/my/consents/", consent).status_code == 403
    # A citizen cannot query.
    client.force_login(world.citizen)
    query = {"grant": grant.pk, "action": "query", "query-subject": RID}
    assert client.post(QUERY_PAGE, query).status_code == 403
    client.logout()
    assert client.post(f"/exchange/grants/{grant.pk}/approve/").status_code == 302

    grant.refresh_from_db()
    assert grant.status == AccessGrant.Status.REQUESTED
    assert AccessGrant.objects.count() == 1
    assert not MachineCredential.objects.exists()
    assert not Consent.objects.exists()
    assert AuditEntry.objects.count() == audit_before


# --- the catalog and grants -----------------------------------------------------------


def test_catalog_search_and_htmx_partial(client, world):
    login_verified(client, world.staff)
    page = client.get("/exchange/").content.decode()
    assert "人口基础信息" in page and "最低生活保障信息" in page
    found = client.get("/exchange/", {"q": "最低生活"}).content.decode()
    assert "/exchange/datasets/minimum_living/" in found
    assert "/exchange/datasets/population/" not in found
    partial = client.get(
        "/exchange/", {"provider": "public_security"}, headers={"HX-Request": "true"}
    ).content.decode()
    assert "<html" not in partial
    assert "/exchange/datasets/population/" in partial
    assert "/exchange/datasets/minimum_living/" not in partial


def test_dataset_page_shows_fields_and_the_request_form_only_to_staff(english, world):
    login_verified(english, world.staff)
    page = english.get("/exchange/datasets/population/").content.decode()
    assert "Registered address" in page and "Sensitive" in page
    assert "《中华人民共和国居民身份证法》" in page
    assert 'action="/exchange/datasets/population/request/"' in page
    unshared = english.get("/exchange/datasets/criminal_record/").content.decode()
    assert "/request/" not in unshared
    login_verified(english, world.admin)
    assert "/request/" not in english.get("/exchange/datasets/population/").content.decode()
    assert english.get("/exchange/datasets/no_such_thing/").status_code == 404


def test_grant_request_then_approval_through_the_pages(client, world):
    login_verified(client, world.staff)
    response = client.post(
        "/exchange/datasets/population/request/",
        {
            "mode": "query",
            "data_fields": ["name", "address", "birth_date"],
            "purpose": "service_handling",
            "legal_basis": LEGAL_BASIS,
            "valid_until": _in_days(200),
        },
    )
    grant = AccessGrant.objects.get()
    assert response.status_code == 302 and response["Location"] == f"/exchange/grants/{grant.pk}/"
    assert (grant.status, grant.consumer, grant.fields) == (
        "requested",
        world.consumer,
        ["name", "address", "birth_date"],
    )
    assert f"/exchange/grants/{grant.pk}/" in client.get("/exchange/grants/").content.decode()

    # The data administrator sees it first in the queue and approves fewer fields, sooner.
    decided = make_grant(
        consumer=make_department(code="tax_test", name="税务局"),
        dataset=world.datasets["population"],
        fields=["name"],
    )
    login_verified(client, world.admin)
    queue = client.get("/exchange/grants/").content.decode()
    assert queue.index(f"/exchange/grants/{grant.pk}/") < queue.index(
        f"/exchange/grants/{decided.pk}/"
    )
    assert (
        'name="approve-data_fields"' in client.get(f"/exchange/grants/{grant.pk}/").content.decode()
    )
    response = client.post(
        f"/exchange/grants/{grant.pk}/approve/",
        {"approve-data_fields": ["name", "address"], "approve-valid_until": _in_days(90)},
    )
    assert response.status_code == 302
    grant.refresh_from_db()
    assert (grant.status, grant.fields, grant.valid_until.isoformat(), grant.decided_by) == (
        "approved",
        ["name", "address"],
        _in_days(90),
        world.admin,
    )
    # The staff member's list shows it approved.
    login_verified(client, world.staff)
    page = client.get("/exchange/grants/", {"status": "approved"}).content.decode()
    assert f"/exchange/grants/{grant.pk}/" in page


def test_service_errors_are_shown_on_the_form(english, world):
    login_verified(english, world.staff)
    response = english.post(
        "/exchange/datasets/population/request/",
        {
            "mode": "query",
            "data_fields": ["name"],
            "purpose": "service_handling",
            "legal_basis": LEGAL_BASIS,
            "valid_until": _in_days(5000),
        },
    )
    assert response.status_code == 422
    assert "A grant lasts from today for at most" in response.content.decode()
    assert not AccessGrant.objects.exists()


def test_approval_may_not_widen_and_reject_and_revoke_need_a_reason(english, world):
    grant = make_grant(
        consumer=world.consumer,
        dataset=world.datasets["population"],
        fields=["name"],
        status="requested",
    )
    login_verified(english, world.admin)
    url = f"/exchange/grants/{grant.pk}/"
    widened = english.post(
        url + "approve/",
        {"approve-data_fields": ["name", "address"], "approve-valid_until": _in_days(10)},
    )
    assert widened.status_code == 422  # "address" is not among the choices
    longer = english.post(
        url + "approve/", {"approve-data_fields": ["name"], "approve-valid_until": _in_days(60)}
    )
    assert longer.status_code == 422
    assert "An approval may only shorten the time requested." in longer.content.decode()
    assert english.post(url + "reject/", {"reject-note": " "}).status_code == 422
    grant.refresh_from_db()
    assert grant.status == "requested"

    assert english.post(url + "reject/", {"reject-note": "用途不明确"}).status_code == 302
    grant.refresh_from_db()
    assert (grant.status, grant.decision_note) == ("rejected", "用途不明确")
    # A second decision on a decided grant is refused with its code, nothing changes.
    again = english.post(url + "reject/", {"reject-note": "again"})
    assert again.status_code == 422 and "grant_state_invalid" in again.content.decode()

    approved = make_grant(
        consumer=world.consumer, dataset=world.datasets["population"], fields=["name"]
    )
    url = f"/exchange/grants/{approved.pk}/revoke/"
    assert english.post(url, {"revoke-note": ""}).status_code == 422
    assert english.post(url, {"revoke-note": "不再需要"}).status_code == 302
    approved.refresh_from_db()
    assert approved.status == "revoked"


def test_staff_see_only_their_departments_grants(client, world):
    mine = make_grant(
        consumer=world.consumer, dataset=world.datasets["population"], fields=["name"]
    )
    theirs = make_grant(
        consumer=make_department(code="tax_test", name="税务局"),
        dataset=world.datasets["population"],
        fields=["name"],
    )
    login_verified(client, world.staff)
    page = client.get("/exchange/grants/").content.decode()
    assert f"/exchange/grants/{mine.pk}/" in page
    assert f"/exchange/grants/{theirs.pk}/" not in page
    assert client.get(f"/exchange/grants/{theirs.pk}/").status_code == 404
    huge = "9" * 20  # beyond any database integer: still a plain 404
    assert client.get(f"/exchange/grants/{huge}/").status_code == 404
    assert client.get(QUERY_PAGE, {"grant": huge}).status_code == 404


# --- queries and verifications ----------------------------------------------------------


def test_staff_query_shows_the_granted_fields_and_is_audited(client, world):
    grant = make_grant(
        consumer=world.consumer, dataset=world.datasets["population"], fields=["name", "address"]
    )
    login_verified(client, world.staff)
    assert f'value="{grant.pk}"' in client.get(QUERY_PAGE).content.decode()
    form = client.get(QUERY_PAGE, {"grant": grant.pk}).content.decode()
    assert grant.legal_basis in form and 'name="query-data_fields"' in form

    response = client.post(
        QUERY_PAGE,
        {
            "grant": grant.pk,
            "action": "query",
            "query-subject": RID,
            "query-data_fields": ["name", "address"],
            "query-legal_basis": LEGAL_BASIS,
        },
    )
    page = response.content.decode()
    assert response.status_code == 200
    assert "李娜" in page and "演示市历下区泉城路1号" in page
    assert "王芳" not in page
    entry = AuditEntry.objects.get(action="exchange.query")
    assert (entry.actor, entry.subject_type, entry.subject_id, entry.purpose) == (
        f"user:{world.staff.pk}:{world.staff.username}",
        "person",
        RID,
        "service_handling",
    )
    assert entry.after["fields"] == ["name", "address"]
    assert entry.after["consumer"] == world.consumer.code
    assert f"#{entry.seq}" in page


def test_query_refusals_are_shown_and_read_nothing(english, world):
    grant = make_grant(
        consumer=world.consumer, dataset=world.datasets["population"], fields=["name"]
    )
    login_verified(english, world.staff)
    base = {"grant": grant.pk, "action": "query", "query-legal_basis": LEGAL_BASIS}
    outside = english.post(
        QUERY_PAGE, base | {"query-subject": RID, "query-data_fields": ["address"]}
    )
    bad_id = english.post(
        QUERY_PAGE, base | {"query-subject": "370102198505170000", "query-data_fields": ["name"]}
    )
    assert (outside.status_code, bad_id.status_code) == (422, 422)
    assert "This is not a valid resident ID number." in bad_id.content.decode()
    assert "泉城路" not in outside.content.decode()
    assert not AuditEntry.objects.filter(action="exchange.query").exists()
    # A grant of another department, or one no longer in force, cannot be used.
    other = make_grant(
        consumer=make_department(code="tax_test", name="税务局"),
        dataset=world.datasets["population"],
        fields=["name"],
    )
    assert english.get(QUERY_PAGE, {"grant": other.pk}).status_code == 404
    services.grant_revoke(grant=grant, actor=world.admin, note="到期")
    revoked = english.post(QUERY_PAGE, base | {"query-subject": RID, "query-data_fields": ["name"]})
    assert revoked.status_code == 404
    assert not AuditEntry.objects.filter(action="exchange.query").exists()


def test_verification_shows_only_yes_or_no(english, world):
    grant = make_grant(
        consumer=world.consumer,
        dataset=world.datasets["population"],
        fields=["address"],
        mode="verify",
    )
    login_verified(english, world.staff)
    form = english.get(QUERY_PAGE, {"grant": grant.pk}).content.decode()
    assert 'name="query-subject"' not in form  # a verify-only grant reads no fields
    assert 'name="registered_address-param_address"' in form
    response = english.post(
        QUERY_PAGE,
        {
            "grant": grant.pk,
            "action": "verify",
            "question": "registered_address",
            "registered_address-subject": RID,
            "registered_address-param_address": "演示市历下区泉城路1号",
            "registered_address-legal_basis": LEGAL_BASIS,
        },
    )
    page = response.content.decode()
    assert response.status_code == 200 and 'class="answer answer-yes"' in page
    assert "李娜" not in page
    entry = AuditEntry.objects.get(action="exchange.verify")
    assert entry.subject_id == RID and entry.after["result"] is True


# --- 数据使用记录 and consents -------------------------------------------------------------


def test_citizens_see_exactly_their_own_accesses(english, world):
    make_grant(
        consumer=world.consumer, dataset=world.datasets["population"], fields=["name", "address"]
    )
    world.query(RID, legal_basis="依据甲")
    world.query(OTHER_RID, legal_basis="依据乙")
    english.force_login(world.citizen)
    page = english.get("/exchange/my/").content.decode()
    assert "演示市人力资源和社会保障局" in page
    assert "人口基础信息" in page and "姓名" in page and "户籍地址" in page
    assert "Handling a government service" in page
    assert "依据甲" in page and "依据乙" not in page
    english.force_login(world.other)
    page = english.get("/exchange/my/").content.decode()
    assert "依据乙" in page and "依据甲" not in page
    english.force_login(make_user(role="citizen"))
    assert "依据" not in english.get("/exchange/my/").content.decode()


def test_access_log_is_paginated(client, world):
    make_grant(
        consumer=world.consumer, dataset=world.datasets["population"], fields=["name", "address"]
    )
    for n in range(23):
        world.query(legal_basis=f"依据{n:02d}号")
    client.force_login(world.citizen)
    first = client.get("/exchange/my/").content.decode()
    assert "依据22号" in first and "依据02号" not in first
    second = client.get("/exchange/my/", {"page": 2}, headers={"HX-Request": "true"})
    assert "<html" not in second.content.decode()
    assert "依据02号" in second.content.decode() and "依据22号" not in second.content.decode()


def test_consent_given_and_withdrawn_through_the_page(client, world):
    department = make_department(code="civil_test", name="演示市民政局")
    client.force_login(world.citizen)
    page = client.get("/exchange/my/consents/").content.decode()
    assert 'value="minimum_living"' in page and 'value="population"' not in page
    response = client.post(
        "/exchange/my/consents/",
        {
            "dataset": "minimum_living",
            "department": department.code,
            "purpose": "social_assistance",
            "valid_until": _in_days(60),
        },
    )
    assert response.status_code == 302
    consent = Consent.objects.get()
    assert (consent.holder_person, consent.grantee_department, consent.dataset_code) == (
        world.citizen.person,
        department,
        "minimum_living",
    )
    assert (
        f"/exchange/my/consents/{consent.pk}/withdraw/"
        in client.get("/exchange/my/consents/").content.decode()
    )

    # Someone else cannot withdraw it; its holder can.
    client.force_login(world.other)
    assert client.post(f"/exchange/my/consents/{consent.pk}/withdraw/").status_code == 404
    consent.refresh_from_db()
    assert consent.withdrawn_at is None
    client.force_login(world.citizen)
    assert client.post(f"/exchange/my/consents/{consent.pk}/withdraw/").status_code == 302
    consent.refresh_from_db()
    assert consent.withdrawn_at is not None


def test_consent_to_unconditional_data_is_refused_on_the_form(client, world):
    client.force_login(world.citizen)
    response = client.post(
        "/exchange/my/consents/",
        {
            "dataset": "population",
            "department": world.consumer.code,
            "purpose": "social_assistance",
            "valid_until": _in_days(60),
        },
    )
    assert response.status_code == 422 and not Consent.objects.exists()


# --- statistics and credentials --------------------------------------------------------------


def test_stats_count_the_reads(client, world):
    make_grant(
        consumer=world.consumer, dataset=world.datasets["population"], fields=["name", "address"]
    )
    world.query()
    world.query(OTHER_RID)
    login_verified(client, world.admin)
    response = client.get("/exchange/stats/", {"days": 7})
    page = response.content.decode()
    assert response.context["stats"].total == 2
    assert "演示市人力资源和社会保障局" in page and "人口基础信息" in page
    assert '<meter min="0" max="2" value="2"' in page


def test_a_credentials_token_is_shown_once(client, world):
    login_verified(client, world.admin)
    response = client.post(
        "/exchange/credentials/",
        {"department": world.consumer.code, "name": "社保业务系统", "days": 90, "rate_limit": 120},
    )
    assert response.status_code == 201
    token = re.search(r"tbx_[0-9a-f]{16}_[A-Za-z0-9_-]+", response.content.decode()).group()
    credential = MachineCredential.objects.get()
    assert services.credential_authenticate(token) == credential
    assert response["Cache-Control"].startswith("max-age=0")
    listing = client.get("/exchange/credentials/").content.decode()
    secret = token.removeprefix(f"tbx_{credential.key_id}_")  # may itself hold "_" or "-"
    assert credential.key_id in listing and secret not in listing and "tbx_" not in listing

    rotated = client.post(f"/exchange/credentials/{credential.pk}/rotate/")
    new_token = re.search(r"tbx_[0-9a-f]{16}_[A-Za-z0-9_-]+", rotated.content.decode()).group()
    assert rotated.status_code == 201 and new_token != token
    assert new_token not in client.get("/exchange/credentials/").content.decode()

    new = MachineCredential.objects.get(replaces=credential)
    assert client.post(f"/exchange/credentials/{new.pk}/revoke/").status_code == 302
    new.refresh_from_db()
    assert new.revoked_at is not None


def test_bad_credential_input_is_shown_on_the_form(client, world):
    login_verified(client, world.admin)
    response = client.post(
        "/exchange/credentials/",
        {"department": world.consumer.code, "name": "", "days": 0, "rate_limit": 10},
    )
    assert response.status_code == 422 and not MachineCredential.objects.exists()
