"""Population sweeps at scale: the Parquet snapshot read back as it was taken, bucket by
bucket in bounded memory; grants written in bulk (COPY on PostgreSQL) as the ORM would
write them; one audit entry per bucket whose digest names exactly the grants made; and a
run split into many buckets granting what a run in one bucket grants."""

import datetime as dt
import hashlib
import json
import re
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from django.db import connection, connections, transaction
from django.test import override_settings
from django.utils import timezone

from tests.cases.factories import make_case
from tests.people.factories import make_user
from tongban.audit.models import AuditEntry
from tongban.audit.selectors import verify_log
from tongban.cases.models import Case, CaseEvent, Notification
from tongban.cases.selectors import case_timeline
from tongban.catalog.models import ServiceItem
from tongban.core.bulk import pairs_digest, rows_append
from tongban.entitlements import services
from tongban.entitlements.errors import SnapshotInvalid
from tongban.entitlements.models import Entitlement, EntitlementRun
from tongban.entitlements.rulebook import entitlement_rule_in_force
from tongban.entitlements.selectors import grant_batch_digest
from tongban.entitlements.services import (
    entitlements_run,
    entitlements_snapshot,
    grant_cases_open_all,
)
from tongban.entitlements.snapshot import snapshot_chunks
from tongban.exchange.models import Dataset, Record
from tongban.people.models import Person, User

from .factories import ON, civil_affairs_with_grant, resident

pytestmark = pytest.mark.django_db
RULE = "elder_allowance"
NEEDS = {"population": {"alive", "birth_date", "division_code"}}


@pytest.fixture
def town() -> list[Person]:
    """Twelve residents: eligible ones and every way of not being eligible."""
    civil_affairs_with_grant()
    return [
        resident(born=dt.date(1940 + n, 1 + n, 1 + n), division_code=code, alive=alive)
        for n, (code, alive) in enumerate(
            [
                ("370102", True),
                ("370112", True),
                ("370202", True),
                ("370102", False),
                ("370103", True),
                ("110101", True),
                ("370104", True),
                ("370105", True),
            ]
        )
    ] + [resident(born=dt.date(1990, 1, n + 1)) for n in range(4)]


def _grants() -> set[tuple[int, str, Decimal, str]]:
    return {
        (e.person_id, e.status, e.amount, json.dumps(e.facts, sort_keys=True))
        for e in Entitlement.objects.all()
    }


def test_the_snapshot_reads_back_as_taken_bucket_by_bucket(
    town: list[Person], tmp_path: Path
) -> None:
    manifest = entitlements_snapshot(
        actor="test", directory=tmp_path, rule=RULE, on=ON, bucket_persons=5
    )

    assert manifest["buckets"] == 3 and manifest["persons"] == 12
    assert manifest["datasets"]["population"] == {
        "fields": {"alive": "boolean", "birth_date": "date", "division_code": "string"},
        "rows": 12,
    }
    seen: dict[int, dict[str, object]] = {}
    for bucket, chunk in snapshot_chunks(tmp_path, NEEDS):
        assert all(pk % 3 == bucket for pk in chunk.subjects.to_pylist())
        for row in chunk.tables["population"].to_pylist():
            assert row["subject"] % 3 == bucket
            seen[row.pop("subject")] = row
    people = {p.resident_id: p.pk for p in town}
    assert seen == {
        people[r.subject]: {
            "alive": r.data["alive"],
            "birth_date": dt.date.fromisoformat(r.data["birth_date"]),
            "division_code": r.data["division_code"],
        }
        for r in Record.objects.filter(dataset__code="population")
    }
    audited = AuditEntry.objects.get(action="entitlement.snapshot").after or {}
    assert audited["persons"] == 12 and audited["rows"] == {"population": 12}
    with pytest.raises(SnapshotInvalid):  # one snapshot per directory
        entitlements_snapshot(actor="test", directory=tmp_path, rule=RULE, on=ON)


def test_a_snapshot_without_a_field_the_rule_reads_is_refused(
    town: list[Person], tmp_path: Path
) -> None:
    entitlements_snapshot(actor="test", directory=tmp_path, rule=RULE, on=ON)
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    del manifest["datasets"]["population"]["fields"]["alive"]
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))

    with pytest.raises(SnapshotInvalid):
        entitlements_run(rule=RULE, actor="test", on=ON, snapshot=tmp_path)
    assert not EntitlementRun.objects.exists()


def test_chunks_are_read_one_at_a_time(tmp_path: Path) -> None:
    civil_affairs_with_grant()
    population = Dataset.objects.get(code="population")
    people = Person.objects.bulk_create(
        Person(
            resident_id=f"370102{n:012d}",
            name="居民",
            birth_date=dt.date(1930, 1, 1) + dt.timedelta(days=n),
            sex="F",
            division_code="370102",
        )
        for n in range(3000)
    )
    Record.objects.bulk_create(
        Record(
            dataset=population,
            subject=p.resident_id,
            data={"birth_date": p.birth_date.isoformat(), "division_code": "370102", "alive": True},
        )
        for p in people
    )
    entitlements_snapshot(actor="test", directory=tmp_path, rule=RULE, on=ON, bucket_persons=250)

    baseline = pa.total_allocated_bytes()
    peak = 0
    sizes = []
    for _bucket, chunk in snapshot_chunks(tmp_path, NEEDS):
        sizes.append(len(chunk.subjects))
        peak = max(peak, pa.total_allocated_bytes() - baseline)
        del chunk
    held = list(snapshot_chunks(tmp_path, NEEDS))
    whole = pa.total_allocated_bytes() - baseline

    assert sizes == [250] * 12 and len(held) == 12
    assert peak * 3 < whole  # one bucket in memory at a time (and what reading it takes)


def test_a_run_in_many_buckets_grants_what_a_run_in_one_does(town: list[Person]) -> None:
    (one,) = entitlements_run(rule=RULE, actor="test", on=ON)
    in_one = _grants()
    Entitlement.objects.all().delete()

    (many,) = entitlements_run(rule=RULE, actor="test", on=ON, bucket_persons=1)

    assert _grants() == in_one
    assert len(in_one) == 3
    assert many.run.counts == one.run.counts
    assert AuditEntry.objects.filter(action="entitlement.grant_batch").count() == 1 + 3


def test_each_bucket_is_one_audit_entry_whose_digest_names_its_grants(
    town: list[Person],
) -> None:
    (outcome,) = entitlements_run(rule=RULE, actor="test", on=ON, bucket_persons=4)
    run = outcome.run

    batches = AuditEntry.objects.filter(action="entitlement.grant_batch").order_by("seq")
    assert sum((b.after or {})["count"] for b in batches) == run.granted == 3
    for batch in batches:
        after = batch.after or {}
        assert batch.object_id == str(run.pk) and after["buckets"] == 3
        count, digest = grant_batch_digest(run=run, bucket=after["bucket"], buckets=3)
        assert (count, digest) == (after["count"], after["digest"])
    grants = Entitlement.objects.filter(granted_by_run=run).order_by("person_id")
    lines = "".join(f"{g.person_id} {g.pk}\n" for g in grants)
    everything = pairs_digest(
        pa.array([g.person_id for g in grants]), pa.array([g.pk for g in grants])
    )
    assert everything == hashlib.sha256(lines.encode()).hexdigest()
    assert verify_log().ok


def test_bulk_rows_are_the_rows_the_orm_writes(town: list[Person]) -> None:
    """On PostgreSQL this is the COPY path; on SQLite one executemany."""
    run = EntitlementRun.objects.create(
        rule_code=RULE,
        rule_version="2024-01-01",
        evaluated_on=ON,
        actor="test",
        started_at=timezone.now(),
        finished_at=timezone.now(),
    )
    now = timezone.now()
    facts = {"rule": RULE, "observed": {"aged": {"rows": 1, "age": 86}}, "note": '引号"和\\'}
    Entitlement.objects.bulk_create(
        [
            Entitlement(
                person=town[0],
                rule_code=RULE,
                rule_version="2024-01-01",
                status="granted",
                amount=Decimal("100.00"),
                facts=facts,
                granted_at=now,
                granted_by_run=run,
            )
        ]
    )
    ops = connection.ops
    rows_append(
        Entitlement._meta.db_table,
        pa.table(
            {
                "person_id": [town[1].pk],
                "rule_code": [RULE],
                "rule_version": ["2024-01-01"],
                "status": ["granted"],
                "amount": [str(ops.adapt_decimalfield_value(Decimal("100.00"), 10, 2))],
                "facts": [json.dumps(facts, ensure_ascii=False)],
                "granted_at": [str(ops.adapt_datetimefield_value(now))],
                "granted_by_run_id": [run.pk],
            }
        ),
    )

    orm, bulk = (Entitlement.objects.filter(person=p).values().get() for p in (town[0], town[1]))
    for row in (orm, bulk):
        del row["id"], row["person_id"]
    assert bulk == orm
    assert bulk["facts"] == facts and bulk["granted_at"] == now


def test_each_grant_is_a_case_opened_after_the_run(town: list[Person]) -> None:
    entitlements_run(rule=RULE, actor="test", on=ON, bucket_persons=4)
    reserved = sorted(Entitlement.objects.values_list("case_id", flat=True))
    assert len(set(reserved)) == 3 and None not in reserved  # each grant's case id, reserved
    assert not Case.objects.exists()  # the run writes grants alone

    assert grant_cases_open_all() == 3
    assert grant_cases_open_all() == 0
    grants = list(Entitlement.objects.select_related("case", "case__item").order_by("pk"))
    assert sorted(Case.objects.values_list("pk", flat=True)) == reserved

    for grant in grants:
        case = grant.case
        assert case is not None and case.applicant_person_id == grant.person_id
        assert case.item.code == "11370100004187917P-000507103000-01"
        assert case.submission_id is None and case.state == "completed"
        assert case.decision == "approved" and case.decided_by == "test"
        assert case.submitted_at == case.closed_at == grant.granted_at  # dated as the grant
        assert "高龄津贴" in case.decision_reason
        day = f"{timezone.localdate(grant.granted_at):%Y%m%d}"  # granted today, whatever ON is
        assert re.fullmatch(rf"370100{day}Z[0-9A-HJ-NP-Y]{{7}}", case.number)
        assert [(s.action, s.to_state) for s in case_timeline(case)] == [("grant", "completed")]
        assert not case.events.exists()  # the grant is the case row itself, not a stored step
    account = grants[0].case.submitted_by  # type: ignore[union-attr]
    assert account.username == "civil_affairs-benefits"
    assert not account.is_active and not account.has_usable_password()

    entitlements_run(rule=RULE, actor="test", on=ON, bucket_persons=4)  # nothing new
    assert Case.objects.count() == 3 and not CaseEvent.objects.exists()
    entitlements_run(rule=RULE, actor="test", on=dt.date(2026, 7, 1), bucket_persons=4)

    assert Case.objects.count() == 3
    revalued = CaseEvent.objects.filter(action="benefit_revalue")
    assert sorted(revalued.values_list("case_id", flat=True)) == [g.case_id for g in grants]
    assert {e.note for e in revalued} == {"每月120.00元"}


def test_a_step_on_a_grant_opens_its_case_first(town: list[Person]) -> None:
    """Before the cases are opened after a run, a later run's new amount opens them (the
    step goes on the case), as does a holder's decline."""
    entitlements_run(rule=RULE, actor="test", on=ON, bucket_persons=4)
    assert not Case.objects.exists()

    (revalued,) = entitlements_run(rule=RULE, actor="test", on=dt.date(2026, 7, 1))

    assert revalued.run.revalued == 3 and Case.objects.count() == 3
    grants = Entitlement.objects.order_by("pk")
    steps = CaseEvent.objects.filter(action="benefit_revalue")
    assert sorted(steps.values_list("case_id", flat=True)) == [g.case_id for g in grants]
    assert all(g.case is not None and g.case.applicant_person_id == g.person_id for g in grants)
    assert grant_cases_open_all() == 0


def test_an_approved_application_becomes_the_grant_not_a_second_case(town: list[Person]) -> None:
    rule = entitlement_rule_in_force(RULE, on=ON)
    assert rule is not None
    item = ServiceItem.objects.get(code=rule.item)
    applied = make_case(item, applicant=town[1])  # the data had missed them: they applied
    Case.objects.filter(pk=applied.pk).update(state="completed", decision="approved")
    refused = make_case(item, applicant=town[4])
    Case.objects.filter(pk=refused.pk).update(state="decided", decision="rejected")

    entitlements_run(rule=RULE, actor="test", on=ON, bucket_persons=4)
    grant_cases_open_all()

    grant = Entitlement.objects.get(person=town[1])
    assert grant.case_id == applied.pk
    assert grant.facts["observed"]["aged"]["age"] == 85  # born 1941-02-02: their own facts
    assert list(applied.events.values_list("action", flat=True)) == ["submit", "benefit_hold"]
    assert Entitlement.objects.get(person=town[4]).case_id not in (refused.pk, None)
    assert Case.objects.filter(applicant_person=town[1]).count() == 1
    assert Case.objects.count() == 4  # two applications, two cases opened for the others


@pytest.mark.django_db(transaction=True)
def test_cases_are_opened_a_chunk_a_transaction_on_workers(
    town: list[Person], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(services, "OPEN_CHUNK", 1)
    entitlements_run(rule=RULE, actor="test", on=ON)

    assert grant_cases_open_all(workers=2) == 3

    grants = Entitlement.objects.select_related("case")
    assert len({g.case_id for g in grants}) == Case.objects.count() == 3
    assert all(g.case is not None and g.case.applicant_person_id == g.person_id for g in grants)


@pytest.mark.django_db(transaction=True)
def test_a_grant_opened_meanwhile_keeps_its_one_case(town: list[Person]) -> None:
    """While a holder's page opens their grant's case, the worker opening every case waits
    for that grant, then sees its case opened and opens only the others'."""
    if connection.vendor != "postgresql":
        pytest.skip("SQLite's writers take turns")
    entitlements_run(rule=RULE, actor="test", on=ON)
    held = Entitlement.objects.order_by("pk")[0]
    opened, release = threading.Event(), threading.Event()

    def holder_page() -> None:
        try:
            with transaction.atomic():
                services.grant_cases_open(Entitlement.objects.filter(pk=held.pk))
                opened.set()
                release.wait(10)
        finally:
            connections.close_all()

    def waiting() -> int:
        with connection.cursor() as cursor:
            cursor.execute("SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'")
            return int(cursor.fetchone()[0])

    page = threading.Thread(target=holder_page)
    page.start()
    try:
        assert opened.wait(10)
        with ThreadPoolExecutor(1) as pool:
            worker = pool.submit(services._own_connection, lambda: grant_cases_open_all(workers=1))
            for _ in range(200):  # until the worker waits for the holder's row
                if waiting():
                    break
                time.sleep(0.05)
            assert waiting() == 1
            release.set()
            assert worker.result(10) == 2
    finally:
        release.set()
        page.join()

    assert Case.objects.count() == 3 and not Case.objects.filter(entitlement=None).exists()
    assert sorted(Case.objects.values_list("pk", flat=True)) == sorted(
        Entitlement.objects.values_list("case_id", flat=True)
    )


@pytest.mark.django_db(transaction=True)
def test_buckets_written_on_workers_grant_what_one_transaction_does(town: list[Person]) -> None:
    """Outside a transaction each bucket commits on its own (on PostgreSQL, two at once);
    inside one, the run is that one transaction."""
    with transaction.atomic():
        (together,) = entitlements_run(rule=RULE, actor="test", on=ON, bucket_persons=1)
    in_one = _grants()
    Entitlement.objects.all().delete()

    (apart,) = entitlements_run(rule=RULE, actor="test", on=ON, bucket_persons=1, workers=2)

    assert _grants() == in_one and len(in_one) == 3
    assert apart.run.counts == together.run.counts
    assert apart.run.finished_at is not None
    assert EntitlementRun.objects.get(pk=apart.run.pk).counts == apart.run.counts
    batches = AuditEntry.objects.filter(action="entitlement.grant_batch", object_id=apart.run.pk)
    assert sum((b.after or {})["count"] for b in batches) == 3
    assert verify_log().ok


@pytest.mark.django_db(transaction=True)
def test_a_run_stopped_part_way_keeps_whole_buckets_and_the_next_does_the_rest(
    town: list[Person], monkeypatch: pytest.MonkeyPatch
) -> None:
    for person in (town[0], town[1], town[4]):  # the eligible: they are told
        make_user(role=User.Role.CITIZEN, person=person)
    notify = services._notify
    granting: list[list[int]] = []  # by bucket

    def notify_then_fail(rule: Any, amount: Any, persons: pa.Array) -> None:
        notify(rule, amount, persons)
        if len(persons):
            granting.append(sorted(persons.to_pylist()))
        if len(granting) == 2:  # the second bucket that grants anyone
            raise RuntimeError("the connection was lost")

    monkeypatch.setattr(services, "_notify", notify_then_fail)
    with pytest.raises(RuntimeError):
        entitlements_run(rule=RULE, actor="test", on=ON, bucket_persons=1, workers=1)

    stopped = EntitlementRun.objects.get()
    first, second = granting
    assert stopped.finished_at is None and stopped.granted == len(first) < 3
    assert sorted(Entitlement.objects.values_list("person_id", flat=True)) == first
    assert sorted(Notification.objects.values_list("user__person_id", flat=True)) == first
    assert AuditEntry.objects.filter(action="entitlement.grant_batch").count() == 1
    assert not AuditEntry.objects.filter(action="entitlement.run").exists()
    monkeypatch.undo()

    (again,) = entitlements_run(rule=RULE, actor="test", on=ON, bucket_persons=1)
    grant_cases_open_all()

    assert again.run.finished_at is not None
    assert (again.run.granted, again.run.unchanged) == (3 - len(first), len(first))
    assert Entitlement.objects.count() == Case.objects.count() == Notification.objects.count() == 3
    again_granted = Entitlement.objects.filter(granted_by_run=again.run)
    assert set(second) <= set(again_granted.values_list("person_id", flat=True))
    assert verify_log().ok


@pytest.mark.django_db(transaction=True)
@override_settings(ENTITLEMENT_RUN_WORKERS=3)
def test_a_run_writes_on_as_many_connections_as_configured_where_it_can(
    town: list[Person], monkeypatch: pytest.MonkeyPatch
) -> None:
    given: list[int] = []
    buckets = services._buckets

    def spy(*args: Any) -> Any:
        given.append(args[-1])
        return buckets(*args)

    monkeypatch.setattr(services, "_buckets", spy)
    entitlements_run(rule=RULE, actor="test", on=ON)
    entitlements_run(rule=RULE, actor="test", on=ON, workers=2)
    entitlements_run(rule=RULE, actor="test", on=ON, dry_run=True)  # reads only
    with transaction.atomic():  # the caller's transaction: its one connection
        entitlements_run(rule=RULE, actor="test", on=ON)

    # SQLite has one writer
    assert given == ([3, 2, 1, 1] if connection.vendor == "postgresql" else [1, 1, 1, 1])
