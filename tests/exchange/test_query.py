"""Queries and verifications through the exchange: grants, consent, minimization, audit."""

import datetime as dt

import pytest
from django.utils import timezone

from tests.exchange.factories import load_datasets, make_grant, put_rows
from tests.people.factories import make_department, make_person, make_user, valid_resident_id
from tongban.audit.models import AuditEntry
from tongban.audit.selectors import verify_log
from tongban.core.errors import TongbanError
from tongban.exchange import services
from tongban.exchange.models import AccessGrant
from tongban.exchange.services import Caller
from tongban.licensing.models import Consent
from tongban.people.models import User

pytestmark = pytest.mark.django_db

RID = valid_resident_id(birth=dt.date(1985, 5, 17), n=3)
ROW = {
    "resident_id": RID,
    "name": "李娜",
    "sex": "女",
    "birth_date": "1985-05-17",
    "ethnicity": "汉",
    "division_code": "370102",
    "address": "演示市历下区泉城路1号",
    "registered_since": "2001-09-01",
    "alive": True,
}


@pytest.fixture
def world():
    datasets = load_datasets("population", "minimum_living", "criminal_record")
    put_rows(datasets["population"], ROW)
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
    consumer = make_department(code="civil_affairs_test", name="民政局")
    return datasets, consumer, Caller(consumer, "system:test", 1000)


def _query(caller, **overrides):
    body = {
        "dataset_code": "population",
        "subject": RID,
        "fields": ["name", "address"],
        "purpose": "service_handling",
        "legal_basis": "《社会救助暂行办法》第十一条",
    } | overrides
    return services.data_query(caller=caller, **body)


def _error(call) -> TongbanError:
    before = AuditEntry.objects.count()
    with pytest.raises(TongbanError) as caught:
        call()
    assert AuditEntry.objects.count() == before, "a refused call logs nothing as delivered"
    return caught.value


def test_granted_fields_only_and_audited(world):
    datasets, consumer, caller = world
    make_grant(consumer=consumer, dataset=datasets["population"], fields=["name", "address"])

    answer = _query(caller)

    assert answer["rows"] == [{"name": "李娜", "address": "演示市历下区泉城路1号"}]
    assert answer["subject"] == RID[:4] + "*" * 10 + RID[-4:]
    entry = AuditEntry.objects.get(seq=answer["audit_seq"])
    assert (entry.action, entry.actor, entry.subject_type, entry.subject_id) == (
        "exchange.query",
        "system:test",
        "person",
        RID,
    )
    assert entry.purpose == "service_handling"
    assert entry.after["fields"] == ["name", "address"]
    assert entry.after["legal_basis"] == "《社会救助暂行办法》第十一条"
    assert entry.after["consumer"] == "civil_affairs_test"
    assert verify_log().ok


def test_ids_masked_unless_the_grant_has_the_full_id(world):
    datasets, consumer, caller = world
    make_grant(consumer=consumer, dataset=datasets["population"], fields=["resident_id"])
    assert _query(caller, fields=["resident_id"])["rows"] == [
        {"resident_id": RID[:4] + "*" * 10 + RID[-4:]}
    ]
    other = make_department(code="hrss_test", name="人社局")
    make_grant(consumer=other, dataset=datasets["population"], fields=["resident_id"], full_id=True)
    answer = _query(Caller(other, "system:hrss", 1000), fields=["resident_id"])
    assert answer["rows"] == [{"resident_id": RID}] and answer["subject"] == RID


@pytest.mark.parametrize(
    ("setup", "code"),
    [
        ("none", "grant_missing"),
        ("requested", "grant_missing"),
        ("revoked", "grant_revoked"),
        ("expired", "grant_expired"),
        ("other_purpose", "purpose_not_granted"),
        ("fewer_fields", "fields_not_granted"),
        ("verify_only", "grant_verification_only"),
    ],
)
def test_refusals_have_a_code_and_return_nothing(world, setup, code):
    datasets, consumer, caller = world
    population = datasets["population"]
    if setup in ("requested", "revoked"):
        make_grant(consumer=consumer, dataset=population, fields=["name", "address"], status=setup)
    elif setup == "expired":
        grant = make_grant(consumer=consumer, dataset=population, fields=["name", "address"])
        past = timezone.localdate() - dt.timedelta(days=1)
        AccessGrant.objects.filter(pk=grant.pk).update(valid_from=past, valid_until=past)
    elif setup == "other_purpose":
        make_grant(
            consumer=consumer, dataset=population, fields=["name", "address"], purpose="statistics"
        )
    elif setup == "fewer_fields":
        make_grant(consumer=consumer, dataset=population, fields=["name"])
    elif setup == "verify_only":
        make_grant(consumer=consumer, dataset=population, fields=["name", "address"], mode="verify")
    assert _error(lambda: _query(caller)).code == code


def test_unshared_data_is_never_returned(world):
    datasets, consumer, caller = world
    assert _error(lambda: _query(caller, dataset_code="criminal_record")).code == (
        "dataset_not_shared"
    )
    requester = make_user(role=User.Role.STAFF, department=consumer)
    with pytest.raises(TongbanError) as caught:
        services.grant_request(
            dataset=datasets["criminal_record"],
            fields=["has_record"],
            mode="query",
            purpose="service_handling",
            legal_basis="x",
            valid_until=timezone.localdate(),
            actor=requester,
        )
    assert caught.value.code == "dataset_not_shared"
    assert not AccessGrant.objects.filter(dataset=datasets["criminal_record"]).exists()


def test_conditional_data_needs_the_subjects_consent(world):
    datasets, consumer, caller = world
    minimum = datasets["minimum_living"]
    make_grant(consumer=consumer, dataset=minimum, fields=["status", "monthly_amount"])

    def ask():
        return _query(caller, dataset_code="minimum_living", fields=["status", "monthly_amount"])

    assert _error(ask).code == "consent_missing"

    citizen = make_user(role="citizen", person=make_person(resident_id=RID, name="李娜"))
    consent = services.data_consent_grant(
        dataset=minimum,
        department=consumer,
        purpose="social_assistance",
        valid_until=timezone.localdate() + dt.timedelta(days=30),
        actor=citizen,
    )
    assert ask()["rows"] == [{"status": "正常保障", "monthly_amount": "860.00"}]

    from tongban.licensing.services import consent_withdraw

    consent_withdraw(consent=consent, actor=citizen)
    assert Consent.objects.get(pk=consent.pk).withdrawn_at is not None
    assert _error(ask).code == "consent_missing"


def test_verification_returns_only_a_boolean_and_is_logged(world):
    datasets, consumer, caller = world
    make_grant(consumer=consumer, dataset=datasets["population"], fields=["address"], mode="verify")

    def ask(address):
        return services.fact_verify(
            caller=caller,
            question="registered_address",
            subject=RID,
            params={"address": address},
            purpose="service_handling",
            legal_basis="《居民身份证法》",
        )

    yes = ask("演示市历下区泉城路1号")
    no = ask("演示市历下区泉城路2号")
    assert (yes["result"], no["result"]) == (True, False)
    assert set(yes) == {"request_id", "dataset", "subject", "audit_seq", "question", "result"}
    entry = AuditEntry.objects.get(seq=no["audit_seq"])
    assert entry.action == "exchange.verify" and entry.subject_id == RID
    assert entry.after["question"] == "registered_address" and entry.after["result"] is False
    # A verify-only grant cannot read the field itself.
    assert _error(lambda: _query(caller, fields=["address"])).code == "grant_verification_only"


def test_idempotent_retry_returns_the_first_answer_and_logs_once(world):
    datasets, consumer, caller = world
    make_grant(consumer=consumer, dataset=datasets["population"], fields=["name", "address"])
    first = _query(caller, idempotency_key="req-1")
    count = AuditEntry.objects.count()
    assert _query(caller, idempotency_key="req-1") == first
    assert AuditEntry.objects.count() == count
    assert _error(lambda: _query(caller, idempotency_key="req-1", fields=["name"])).code == (
        "idempotency_key_reused"
    )


def test_rate_limit_per_caller(world):
    datasets, consumer, _ = world
    make_grant(consumer=consumer, dataset=datasets["population"], fields=["name", "address"])
    caller = Caller(consumer, "system:limited", 2)
    _query(caller)
    _query(caller)
    assert _error(lambda: _query(caller)).code == "rate_limited"


def test_bad_subject_is_a_422(world):
    datasets, consumer, caller = world
    make_grant(consumer=consumer, dataset=datasets["population"], fields=["name", "address"])
    error = _error(lambda: _query(caller, subject="110101199003070000"))
    assert (error.code, error.status) == ("invalid_resident_id", 422)


def test_the_person_sees_every_access_and_admins_see_the_counts(world):
    from tongban.exchange.selectors import access_log, access_stats

    datasets, consumer, caller = world
    make_grant(consumer=consumer, dataset=datasets["population"], fields=["name", "address"])
    make_grant(
        consumer=consumer, dataset=datasets["population"], fields=["birth_date"], mode="verify"
    )
    _query(caller)
    services.fact_verify(
        caller=caller,
        question="age_at_least",
        subject=RID,
        params={"years": 18},
        purpose="service_handling",
        legal_basis="依申请",
    )
    citizen = make_user(role="citizen", person=make_person(resident_id=RID, name="李娜"))
    stranger = make_user(role="citizen")

    log = access_log(user=citizen)
    assert [(a.action, a.consumer, a.dataset) for a in log] == [
        ("exchange.verify", "民政局", "人口基础信息"),
        ("exchange.query", "民政局", "人口基础信息"),
    ]
    assert log[1].fields == ["姓名", "户籍地址"] and log[0].result is True
    assert access_log(user=stranger) == []

    stats = access_stats()
    assert (stats.total, stats.queries, stats.verifications) == (2, 1, 1)
    assert stats.by_consumer == [("民政局", 2)] and stats.by_dataset == [("人口基础信息", 2)]
    assert stats.by_day[-1] == (timezone.localdate(), 2) and len(stats.by_day) == 30
    assert stats.grants_by_status == {"approved": 2}
