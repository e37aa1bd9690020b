"""PostgreSQL only: the append-only triggers, and appenders in parallel taking turns on
the locked head."""

import threading

import pytest
from django.db import IntegrityError, connection, connections, transaction

from tongban.audit.models import AuditCheckpoint, AuditEntry
from tongban.audit.selectors import verify_log
from tongban.audit.services import audit_record

from .helpers import make_log

pytestmark = pytest.mark.skipif(
    connection.vendor != "postgresql", reason="triggers and row locks are PostgreSQL features"
)


@pytest.mark.django_db
@pytest.mark.parametrize(
    "change",
    [
        lambda: AuditEntry.objects.filter(seq=1).update(action="changed"),
        lambda: AuditEntry.objects.filter(seq=1).delete(),
        lambda: AuditCheckpoint.objects.update(root_hash="0" * 64),
        lambda: AuditCheckpoint.objects.all().delete(),
    ],
)
def test_the_database_refuses_to_change_entries_and_checkpoints(settings, change):
    # given
    settings.AUDIT_CHECKPOINT_INTERVAL = 1
    make_log(1)
    # then
    with pytest.raises(IntegrityError, match="the audit log is append-only"), transaction.atomic():
        change()
    assert verify_log().ok


@pytest.mark.django_db(transaction=True)
def test_parallel_appenders_build_one_unbroken_chain(settings):
    # given
    settings.AUDIT_CHECKPOINT_INTERVAL = 16
    threads, per_thread = 4, 25
    errors: list[BaseException] = []

    def append(worker: int) -> None:
        try:
            for n in range(per_thread):
                audit_record(action=f"test.worker_{worker}", after={"n": n})
        except BaseException as exc:  # reported to the main thread
            errors.append(exc)
        finally:
            connections.close_all()

    # when
    workers = [threading.Thread(target=append, args=(w,)) for w in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    # then
    assert errors == []
    total = threads * per_thread
    assert list(AuditEntry.objects.values_list("seq", flat=True)) == list(range(1, total + 1))
    result = verify_log()
    assert (result.ok, result.entries_checked, result.checkpoints_checked) == (True, total, 6)


@pytest.mark.django_db(transaction=True)
def test_verifying_while_others_append_reports_no_false_alarm(settings):
    # given a log, and a writer that keeps appending
    settings.AUDIT_CHECKPOINT_INTERVAL = 8
    make_log(20)
    done = threading.Event()
    errors: list[BaseException] = []

    def writer() -> None:
        try:
            for n in range(150):
                audit_record(action="test.live", after={"n": n})
        except BaseException as exc:  # reported to the main thread
            errors.append(exc)
        finally:
            done.set()
            connections.close_all()

    thread = threading.Thread(target=writer)
    # when the log is verified again and again meanwhile
    results = []
    thread.start()
    while not done.is_set():
        results.append(verify_log())
    thread.join()
    # then every pass is clean, and so is the final log
    assert errors == []
    assert len(results) > 1
    assert [r.reason for r in results if not r.ok] == []
    assert verify_log().entries_checked == 170
