"""The exchange API over HTTP: department systems and verified staff query and verify, data
administrators decide grants, people see their access log and manage consents; every
refused call has a code and changes nothing."""

import datetime as dt

import pytest
from django.conf import settings
from django.core.cache import cache
from django.test import Client
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
from tongban.exchange.models import AccessGrant, ExchangeRequest, Record
from tongban.licensing.models import Consent
from tongban.people.models import User

pytestmark = pytest.mark.django_db

API = "/api/v1/exchange"
RID = valid_resident_id(birth=dt.date(1985, 5, 17), n=3)
MASKED = RID[:4] + "*" * 10 + RID[-4:]
LEGAL_BASIS = "《社会救助暂行办法》第十一条"
QUERY = {
    "dataset": "population",
    "subject": RID,
    "fields": ["name", "address"],
    "purpose": "service_handling",
    "legal_basis": LEGAL_BASIS,
}
VERIFY = {
    "question": "registered_address",
    "subject": RID,
    "params": {"address": "演示市历下区泉城路1号"},
    "purpose": "service_handling",
    "legal_basis": LEGAL_BASIS,
}


@pytest.fixture(autouse=True)
def _fresh_rate_windows():
    # Rate-limit counters live in the cache, which outlives each test's transaction.
    cache.clear()


@pytest.fixture
def world():
    datasets = load_datasets("population", "minimum_living", "criminal_record")
    put_rows(
        datasets["population"],
        {
            "resident_id": RID,
            "name": "李娜",
            "sex": "女",
            "birth_date": "1985-05-17",
            "ethnicity": "汉",
            "division_code": "370102",
            "address": "演示市历下区泉城路1号",
            "registered_since": "2001-09-01",
            "alive": True,
        },
    )
    put_rows(
        datasets["minimum_living"],
        {
            "resident_id": RID,
            "status": "正常保障",
            "since": "2023-01-01",
            "monthly_amount": "860.00",
            "household_size": 2,
        },
    )
    return datasets


@pytest.fixture
def consumer():
    return make_department(code="civil_affairs_test", name="民政局")


@pytest.fixture
def data_admin():
    return make_user(role=User.Role.DATA_ADMIN)


def machine_client(consumer, data_admin, *, rate_limit=600):
    """A client that calls as `consumer`'s system, and its credential."""
    credential, token = services.credential_create(
        department=consumer, name="救助审核系统", actor=data_admin, rate_limit=rate_limit
    )
    return Client(headers={"authorization": f"Bearer {token}"}), credential


def post(client, path, body, **headers):
    return client.post(f"{API}{path}", body, content_type="application/json", headers=headers)


def state():
    """Everything a refused call must leave as it was."""
    return (
        AuditEntry.objects.count(),
        ExchangeRequest.objects.count(),
        Record.objects.count(),
        sorted(AccessGrant.objects.values_list("pk", "status", "fields", "valid_until")),
        sorted(Consent.objects.values_list("pk", "withdrawn_at")),
    )


def refused(response, status, code):
    assert (response.status_code, response.json()["code"]) == (status, code), response.content


# --- queries and verifications -----------------------------------------------------


def test_machine_query_returns_granted_fields_and_is_audited_as_the_credential(
    world, consumer, data_admin
):
    # Given a grant for name and address and a machine credential of the consumer
    grant = make_grant(consumer=consumer, dataset=world["population"], fields=["name", "address"])
    client, credential = machine_client(consumer, data_admin)
    # When its system queries
    response = post(client, "/query", QUERY)
    # Then it gets exactly those fields, a masked subject, and one audit entry
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["rows"] == [{"name": "李娜", "address": "演示市历下区泉城路1号"}]
    assert (body["dataset"], body["subject"]) == ("population", MASKED)
    entry = AuditEntry.objects.get(seq=body["audit_seq"])
    assert (entry.action, entry.actor, entry.subject_id, entry.purpose) == (
        "exchange.query",
        f"credential:{credential.key_id}:civil_affairs_test",
        RID,
        "service_handling",
    )
    assert entry.object_id == str(grant.pk)
    assert entry.after["legal_basis"] == LEGAL_BASIS


def test_machine_verification_answers_only_yes_or_no(world, consumer, data_admin):
    make_grant(consumer=consumer, dataset=world["population"], fields=["address"], mode="verify")
    client, credential = machine_client(consumer, data_admin)

    yes = post(client, "/verify", VERIFY)
    no = post(client, "/verify", VERIFY | {"params": {"address": "演示市历下区泉城路2号"}})

    assert yes.status_code == 200, yes.content
    assert (yes.json()["result"], no.json()["result"]) == (True, False)
    assert set(yes.json()) == {
        "request_id",
        "dataset",
        "subject",
        "question",
        "result",
        "audit_seq",
    }
    entry = AuditEntry.objects.get(seq=no.json()["audit_seq"])
    assert (entry.action, entry.actor) == (
        "exchange.verify",
        f"credential:{credential.key_id}:civil_affairs_test",
    )


def test_verified_staff_query_in_their_departments_name(client, world, consumer):
    make_grant(consumer=consumer, dataset=world["population"], fields=["name", "address"])
    staff = make_user(role=User.Role.STAFF, department=consumer)
    login_verified(client, staff)

    response = post(client, "/query", QUERY)

    assert response.status_code == 200, response.content
    entry = AuditEntry.objects.get(seq=response.json()["audit_seq"])
    assert entry.actor == f"user:{staff.pk}:{staff.username}"
    assert entry.after["consumer"] == "civil_affairs_test"


@pytest.mark.parametrize(
    ("setup", "body", "status", "code"),
    [
        ("none", {}, 403, "grant_missing"),
        ("requested", {}, 403, "grant_missing"),
        ("expired", {}, 403, "grant_expired"),
        ("revoked", {}, 403, "grant_revoked"),
        ("name_only", {}, 403, "fields_not_granted"),
        ("granted", {"purpose": "statistics"}, 403, "purpose_not_granted"),
        ("granted", {"dataset": "criminal_record", "fields": ["has_record"]}, 403,
         "dataset_not_shared"),
        ("granted", {"dataset": "no_such_data"}, 404, "dataset_not_found"),
        ("granted", {"fields": ["name", "salary"]}, 422, "exchange_input_invalid"),
        ("granted", {"subject": "110101199003070000"}, 422, "invalid_resident_id"),
        ("granted", {"purpose": "curiosity"}, 422, "invalid_input"),
        ("granted", {"fields": []}, 422, "invalid_input"),
        ("granted", {"subject": None}, 422, "invalid_input"),
    ],
)  # fmt: skip
def test_refused_queries_have_a_code_and_change_nothing(
    world, consumer, data_admin, setup, body, status, code
):
    # Given a consumer whose grant is in state `setup`
    population = world["population"]
    if setup == "name_only":
        make_grant(consumer=consumer, dataset=population, fields=["name"])
    elif setup != "none":
        grant = make_grant(
            consumer=consumer,
            dataset=population,
            fields=["name", "address"],
            status="approved" if setup in ("expired", "granted") else setup,
        )
        if setup == "expired":
            past = timezone.localdate() - dt.timedelta(days=1)
            AccessGrant.objects.filter(pk=grant.pk).update(valid_from=past, valid_until=past)
    client, _credential = machine_client(consumer, data_admin)
    before = state()
    # When its system asks
    response = post(client, "/query", QUERY | body)
    # Then it is refused with the code, and nothing was read, logged or remembered
    refused(response, status, code)
    assert "rows" not in response.json()
    assert state() == before


def test_conditional_data_needs_the_subjects_consent(world, consumer, data_admin):
    make_grant(consumer=consumer, dataset=world["minimum_living"], fields=["status"])
    client, _credential = machine_client(consumer, data_admin)
    ask = QUERY | {"dataset": "minimum_living", "fields": ["status"]}
    before = state()

    refused(post(client, "/query", ask), 403, "consent_missing")
    assert state() == before

    services.data_consent_grant(
        dataset=world["minimum_living"],
        department=consumer,
        purpose="social_assistance",
        valid_until=timezone.localdate() + dt.timedelta(days=30),
        actor=make_user(role="citizen", person=make_person(resident_id=RID, name="李娜")),
    )
    assert post(client, "/query", ask).json()["rows"] == [{"status": "正常保障"}]


def test_an_idempotent_retry_gets_the_same_answer_and_one_audit_entry(world, consumer, data_admin):
    make_grant(consumer=consumer, dataset=world["population"], fields=["name", "address"])
    client, _credential = machine_client(consumer, data_admin)
    first = post(client, "/query", QUERY, idempotency_key="retry-7")
    entries = AuditEntry.objects.count()

    again = post(client, "/query", QUERY, idempotency_key="retry-7")

    assert again.status_code == 200
    assert again.json() == first.json()
    assert AuditEntry.objects.count() == entries
    assert ExchangeRequest.objects.count() == 1
    refused(
        post(client, "/query", QUERY | {"fields": ["name"]}, idempotency_key="retry-7"),
        409,
        "idempotency_key_reused",
    )
    refused(post(client, "/query", QUERY, idempotency_key="k" * 65), 422, "invalid_input")
    assert AuditEntry.objects.count() == entries


def test_the_rate_limit_is_a_429_with_retry_after(world, consumer, data_admin):
    make_grant(consumer=consumer, dataset=world["population"], fields=["name", "address"])
    client, _credential = machine_client(consumer, data_admin, rate_limit=2)
    assert [post(client, "/query", QUERY).status_code for _ in range(2)] == [200, 200]
    before = state()

    response = post(client, "/query", QUERY)

    refused(response, 429, "rate_limited")
    assert response["Retry-After"] == "60"
    assert response.json()["details"] == {"limit": 2, "per": "minute"}
    assert state() == before


def test_only_verified_department_staff_or_systems_may_query(client, world, consumer):
    # Given a grant, and people who are not a consumer's system or its verified staff
    make_grant(consumer=consumer, dataset=world["population"], fields=["name", "address"])
    citizen = make_user(role="citizen", person=make_person(resident_id=RID, name="李娜"))
    unverified = make_user(role=User.Role.STAFF, department=consumer)
    admin = make_user(role=User.Role.DATA_ADMIN)
    before = state()
    # When each of them queries, a refusal with a code, and nothing read or logged
    refused(post(client, "/query", QUERY), 401, "not_authenticated")
    refused(post(client, "/verify", VERIFY), 401, "not_authenticated")
    client.force_login(citizen)
    refused(post(client, "/query", QUERY), 403, "staff_only")
    client.force_login(unverified)
    refused(post(client, "/query", QUERY), 401, "otp_required")
    login_verified(client, admin)
    refused(post(client, "/verify", VERIFY), 403, "staff_only")
    assert state() == before


def test_a_session_needs_the_csrf_token_a_machine_credential_does_not(world, consumer, data_admin):
    make_grant(consumer=consumer, dataset=world["population"], fields=["name", "address"])
    browser = Client(enforce_csrf_checks=True)
    login_verified(browser, make_user(role=User.Role.STAFF, department=consumer))
    before = state()

    assert post(browser, "/query", QUERY).status_code == 403
    assert state() == before

    _client, credential = machine_client(consumer, data_admin)
    token = services.credential_rotate(credential=credential, actor=data_admin)[1]
    system = Client(enforce_csrf_checks=True, headers={"authorization": f"Bearer {token}"})
    assert post(system, "/query", QUERY).status_code == 200


def test_questions_list_names_datasets_and_parameters(world, consumer, data_admin):
    client, _credential = machine_client(consumer, data_admin)

    client.cookies[settings.LANGUAGE_COOKIE_NAME] = "en"
    questions = {q["name"]: q for q in client.get(f"{API}/questions").json()}

    assert questions["age_at_least"] == {
        "name": "age_at_least",
        "label": "The person is at least this old",
        "dataset": "population",
        "params": ["years"],
    }
    assert questions["minimum_living_recipient"]["params"] == []


# --- the catalog -------------------------------------------------------------------


def test_catalog_lists_datasets_with_fields_for_systems_staff_and_admins(
    client, world, consumer, data_admin
):
    system, _credential = machine_client(consumer, data_admin)

    listing = system.get(f"{API}/datasets").json()
    by_provider = system.get(f"{API}/datasets", {"provider": "civil_affairs"}).json()
    by_text = system.get(f"{API}/datasets", {"q": "人口"}).json()
    detail = system.get(f"{API}/datasets/minimum_living").json()

    assert [d["code"] for d in listing["items"]] == [
        "criminal_record",
        "minimum_living",
        "population",
    ]
    assert listing["count"] == 3
    assert [d["code"] for d in by_provider["items"]] == ["minimum_living"]
    assert [d["code"] for d in by_text["items"]] == ["population"]
    assert detail["provider"] == {"code": "civil_affairs", "name": "civil_affairs 局"}
    assert (detail["sharing_class"], detail["update_frequency"], detail["legal_basis"]) == (
        "conditional",
        "monthly",
        "《社会救助暂行办法》",
    )
    assert detail["fields"][1] == {
        "key": "status",
        "name": "保障状态",
        "name_en": "Status",
        "type": "string",
        "sensitivity": "general",
    }
    assert "endpoint" not in detail
    refused(system.get(f"{API}/datasets/nothing"), 404, "dataset_not_found")

    login_verified(client, data_admin)
    assert client.get(f"{API}/datasets").json()["count"] == 3
    login_verified(client, make_user(role=User.Role.STAFF, department=consumer))
    assert client.get(f"{API}/datasets/population").status_code == 200
    client.force_login(make_user(role="citizen"))
    refused(client.get(f"{API}/datasets"), 403, "staff_only")


# --- sharing grants ----------------------------------------------------------------


def test_staff_request_and_data_admins_decide_grants(client, world, consumer, data_admin):
    # Given verified staff of the consumer
    staff = make_user(role=User.Role.STAFF, department=consumer)
    login_verified(client, staff)
    until = timezone.localdate() + dt.timedelta(days=90)
    # When they request a grant
    requested = post(
        client,
        "/grants",
        {
            "dataset": "population",
            "fields": ["name", "address", "birth_date"],
            "purpose": "social_assistance",
            "legal_basis": LEGAL_BASIS,
            "valid_until": until.isoformat(),
        },
    )
    # Then it waits for a decision, and they may not decide it themselves
    assert requested.status_code == 200, requested.content
    grant = requested.json()
    assert (grant["status"], grant["mode"], grant["consumer"]["code"]) == (
        "requested",
        "query",
        "civil_affairs_test",
    )
    before = state()
    refused(post(client, f"/grants/{grant['id']}/approve", {}), 403, "data_admin_only")
    assert state() == before
    # When a verified data administrator approves fewer fields for a shorter time
    login_verified(client, data_admin)
    shorter = timezone.localdate() + dt.timedelta(days=30)
    approved = post(
        client,
        f"/grants/{grant['id']}/approve",
        {"fields": ["name"], "valid_until": shorter.isoformat(), "note": "仅姓名"},
    )
    # Then the grant is narrowed and in force
    assert approved.status_code == 200, approved.content
    assert (approved.json()["status"], approved.json()["fields"]) == ("approved", ["name"])
    assert approved.json()["valid_until"] == shorter.isoformat()
    assert AuditEntry.objects.filter(action="grant.approve", object_id=str(grant["id"])).exists()
    # And a revocation needs a reason, then takes effect
    refused(
        post(client, f"/grants/{grant['id']}/revoke", {"note": " "}), 422, "exchange_input_invalid"
    )
    refused(post(client, f"/grants/{grant['id']}/revoke", {}), 422, "invalid_input")
    revoked = post(client, f"/grants/{grant['id']}/revoke", {"note": "项目结束"})
    assert revoked.json()["status"] == "revoked"
    refused(
        post(client, f"/grants/{grant['id']}/reject", {"note": "x"}), 409, "grant_state_invalid"
    )


def test_a_data_admin_rejects_with_a_reason(client, world, consumer, data_admin):
    grant = make_grant(
        consumer=consumer, dataset=world["population"], fields=["name"], status="requested"
    )
    login_verified(client, data_admin)

    response = post(client, f"/grants/{grant.pk}/reject", {"note": "用途不明确"})

    assert (response.json()["status"], response.json()["decision_note"]) == (
        "rejected",
        "用途不明确",
    )


def test_staff_see_only_their_departments_grants_and_decide_none(client, world, consumer):
    # Given grants of two departments
    other = make_department(code="hrss_test", name="人社局")
    mine = make_grant(consumer=consumer, dataset=world["population"], fields=["name"])
    theirs = make_grant(
        consumer=other, dataset=world["population"], fields=["name"], status="requested"
    )
    # When staff of the first list grants and try to act on the other's
    login_verified(client, make_user(role=User.Role.STAFF, department=consumer))
    listing = client.get(f"{API}/grants").json()
    before = state()
    approve = post(client, f"/grants/{theirs.pk}/approve", {})
    revoke = post(client, f"/grants/{mine.pk}/revoke", {"note": "x"})
    # Then they see only their own, and every decision is refused
    assert [g["id"] for g in listing["items"]] == [mine.pk]
    refused(approve, 403, "data_admin_only")
    refused(revoke, 403, "data_admin_only")
    assert state() == before


def test_data_admins_see_all_grants_by_status(client, world, consumer, data_admin):
    other = make_department(code="hrss_test", name="人社局")
    approved = make_grant(consumer=consumer, dataset=world["population"], fields=["name"])
    requested = make_grant(
        consumer=other, dataset=world["population"], fields=["name"], status="requested"
    )
    login_verified(client, data_admin)

    everything = client.get(f"{API}/grants").json()
    waiting = client.get(f"{API}/grants", {"status": "requested"}).json()

    assert sorted(g["id"] for g in everything["items"]) == sorted([approved.pk, requested.pk])
    assert [g["id"] for g in waiting["items"]] == [requested.pk]
    refused(client.get(f"{API}/grants", {"status": "maybe"}), 422, "invalid_input")
    refused(post(client, "/grants/999999/approve", {}), 404, "grant_not_found")


def test_grant_decisions_need_a_verified_data_admin(client, world, consumer, data_admin):
    grant = make_grant(
        consumer=consumer, dataset=world["population"], fields=["name"], status="requested"
    )
    system, _credential = machine_client(consumer, data_admin)
    before = state()

    refused(post(client, f"/grants/{grant.pk}/approve", {}), 401, "not_authenticated")
    refused(post(system, f"/grants/{grant.pk}/approve", {}), 401, "not_authenticated")
    client.force_login(data_admin)
    refused(post(client, f"/grants/{grant.pk}/approve", {}), 401, "otp_required")
    refused(client.get(f"{API}/grants"), 401, "otp_required")
    assert state() == before


# --- the subject's access log and consents -----------------------------------------


def test_the_access_log_shows_only_the_callers_own_accesses(client, world, consumer, data_admin):
    # Given reads about 李娜 and about someone else
    make_grant(consumer=consumer, dataset=world["population"], fields=["name", "address"])
    other_rid = valid_resident_id(birth=dt.date(1992, 3, 4), n=5)
    put_rows(world["population"], {"resident_id": other_rid, "name": "王强"})
    system, _credential = machine_client(consumer, data_admin)
    post(system, "/query", QUERY)
    post(system, "/query", QUERY | {"subject": other_rid, "fields": ["name"]})
    li_na = make_user(role="citizen", person=make_person(resident_id=RID, name="李娜"))
    # When 李娜 reads her access log
    client.force_login(li_na)
    log = client.get(f"{API}/access-log").json()
    # Then she sees her one access, named as she understands it
    assert log["count"] == 1
    (access,) = log["items"]
    assert (access["action"], access["consumer"], access["dataset"]) == (
        "exchange.query",
        "民政局",
        "人口基础信息",
    )
    assert (access["fields"], access["purpose"], access["legal_basis"]) == (
        ["姓名", "户籍地址"],
        "service_handling",
        LEGAL_BASIS,
    )
    client.force_login(make_user(role="citizen"))
    assert client.get(f"{API}/access-log").json()["count"] == 0
    login_verified(client, make_user(role=User.Role.STAFF, department=consumer))
    refused(client.get(f"{API}/access-log"), 403, "data_subject_only")
    client.logout()
    refused(client.get(f"{API}/access-log"), 401, "not_authenticated")


def test_consent_granted_and_withdrawn_through_the_api(client, world, consumer, data_admin):
    # Given a grant that needs the subject's consent
    make_grant(consumer=consumer, dataset=world["minimum_living"], fields=["status"])
    system, _credential = machine_client(consumer, data_admin)
    ask = QUERY | {"dataset": "minimum_living", "fields": ["status"]}
    client.force_login(make_user(role="citizen", person=make_person(resident_id=RID, name="李娜")))
    until = timezone.localdate() + dt.timedelta(days=30)
    # When the person consents
    granted = post(
        client,
        "/consents",
        {
            "dataset": "minimum_living",
            "department": "civil_affairs_test",
            "purpose": "social_assistance",
            "valid_until": until.isoformat(),
        },
    )
    # Then the department may read, and the consent is listed
    assert granted.status_code == 200, granted.content
    consent = granted.json()
    assert (consent["dataset"], consent["department"], consent["withdrawn_at"]) == (
        "minimum_living",
        {"code": "civil_affairs_test", "name": "民政局"},
        None,
    )
    assert [c["id"] for c in client.get(f"{API}/consents").json()] == [consent["id"]]
    assert post(system, "/query", ask).status_code == 200
    # When they withdraw it, the next read is refused
    assert client.delete(f"{API}/consents/{consent['id']}").status_code == 204
    assert Consent.objects.get(pk=consent["id"]).withdrawn_at is not None
    refused(post(system, "/query", ask), 403, "consent_missing")


def test_consent_refusals_change_nothing(client, world, consumer):
    # Given 李娜's consent and another citizen
    owner = make_user(role="citizen", person=make_person(resident_id=RID, name="李娜"))
    consent = services.data_consent_grant(
        dataset=world["minimum_living"],
        department=consumer,
        purpose="social_assistance",
        valid_until=timezone.localdate() + dt.timedelta(days=30),
        actor=owner,
    )
    body = {
        "dataset": "minimum_living",
        "department": "civil_affairs_test",
        "purpose": "social_assistance",
        "valid_until": (timezone.localdate() + dt.timedelta(days=30)).isoformat(),
    }
    stranger = make_user(role="citizen")
    staff = make_user(role=User.Role.STAFF, department=consumer)
    before = state()
    # When someone else tries to withdraw it, or consents to what cannot be consented to
    client.force_login(stranger)
    refused(client.delete(f"{API}/consents/{consent.pk}"), 404, "consent_not_found")
    refused(
        post(client, "/consents", body | {"dataset": "population"}), 422, "exchange_input_invalid"
    )
    refused(post(client, "/consents", body | {"department": "nobody"}), 404, "department_not_found")
    refused(
        post(client, "/consents", body | {"valid_until": "2020-01-01"}),
        422,
        "exchange_input_invalid",
    )
    assert client.get(f"{API}/consents").json() == []
    login_verified(client, staff)
    refused(client.delete(f"{API}/consents/{consent.pk}"), 403, "data_subject_only")
    # Then the consent stands and nothing was logged
    assert state() == before
    assert Consent.objects.get(pk=consent.pk).withdrawn_at is None


# --- the published description -----------------------------------------------------


def test_openapi_documents_every_exchange_path_with_its_refusals(client):
    spec = client.get("/api/v1/openapi.json").json()
    paths = {p: ops for p, ops in spec["paths"].items() if p.startswith(API)}

    assert {p.removeprefix(API) for p in paths} == {
        "/query",
        "/verify",
        "/questions",
        "/datasets",
        "/datasets/{code}",
        "/grants",
        "/grants/{grant_id}/approve",
        "/grants/{grant_id}/reject",
        "/grants/{grant_id}/revoke",
        "/access-log",
        "/consents",
        "/consents/{consent_id}",
    }
    query = paths[f"{API}/query"]["post"]
    assert {"200", "401", "403", "404", "409", "422", "429"} <= set(query["responses"])
    assert query["responses"]["403"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/ErrorOut"
    }
    assert {"in": "header", "name": "Idempotency-Key"}.items() <= query["parameters"][0].items()
    assert {"MachineCredentialAuth": []} in query["security"]
    assert spec["components"]["securitySchemes"]["MachineCredentialAuth"] == {
        "type": "http",
        "scheme": "bearer",
    }
