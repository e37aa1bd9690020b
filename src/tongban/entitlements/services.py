"""Running entitlement rules over the population (免申即享) and declining a grant.

A run reads a columnar snapshot of the base databases (Parquet, taken under the granting
department's sharing grants: by `entitlements_snapshot`, or by the run itself), one bucket
of people at a time, evaluates the rule for the whole bucket at once, and compares the
result with what people already hold, as arrays: the newly eligible are granted (written in
bulk, and told in-app), holders who no longer qualify go to human review (never ended
silently), and those who declined are left alone. The same rule on the same data changes
nothing the second time, so each bucket commits on its own (two at once on PostgreSQL): a
run that stops part way is finished by the next.

A grant is a case (办件), but the run writes only the grant, with its case's id reserved:
the case is opened after the run, in bulk (`grant_cases_open_all`), or before then when
the holder's pages or a later step need it (`grant_cases_open`). A case row costs about as
much to write as the grant, and the people granted have their benefit and its message as
soon as the run ends.

Audit in bulk: each bucket's grants (and its reviews, and its new amounts) are one chained
audit entry naming the run, their count and a SHA-256 digest over the sorted (person,
entitlement) ids (`bulk.pairs_digest`), so the log commits to exactly which rows a run
wrote without one entry per person; each grant names its run (`granted_by_run`), whose
entries say who ran it, when, on which data and under which rule version."""

import contextlib
import datetime as dt
import tempfile
import zlib
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, as_completed, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import pyarrow as pa
import pyarrow.compute as pc
from django.conf import settings
from django.db import DatabaseError, connection, connections, models, transaction
from django.db.models import Exists, F, IntegerField, Max, Min, OuterRef, QuerySet, Value
from django.utils import timezone, translation
from django.utils.functional import Promise
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from tongban.audit.services import actor_label, audit_record
from tongban.cases import granted
from tongban.cases.models import Case, Notification
from tongban.catalog.models import ServiceItem
from tongban.core.bulk import ids_chosen, ids_reserve, pairs_digest, queryset_table, rows_append
from tongban.exchange.models import AccessGrant, Dataset, Record
from tongban.exchange.proofs import system_account
from tongban.people.models import Department, Person, User

from .errors import (
    DataNotGranted,
    EntitlementNotDeclinable,
    EntitlementNotFound,
    EntitlementNotInReview,
    ReviewNoteInvalid,
    RuleItemMissing,
    RuleNotFound,
)
from .evaluate import Progress, Snapshot, batch_evaluate, facts_build
from .guardians import guardian_of
from .models import Entitlement, EntitlementRun
from .rulebook import (
    EntitlementRule,
    Guardians,
    entitlement_rule_in_force,
    entitlement_rules_all,
)
from .snapshot import BUCKET_PERSONS, bucket_of, snapshot_chunks, snapshot_export, snapshot_manifest

PREVIEW_MAX = 1000
# How many of the newly eligible a preview names (the counts cover everyone).
PREVIEW_LIMIT = 50
# The granting department's system account that the cases of its grants are opened by.
GRANTS_SUFFIX = "-benefits"
NOTIFY_BATCH = 2_000
# Grants (by id range) whose cases one transaction opens, after a run.
OPEN_CHUNK = 50_000
Status = Entitlement.Status
_T = TypeVar("_T")


@dataclass
class RunOutcome:
    run: EntitlementRun
    newly_eligible: list[int] = field(default_factory=list)  # person ids (the first
    # PREVIEW_MAX), for a preview


def _grants_check(rule: EntitlementRule, on: dt.date) -> Department:
    """The granting department, holding an approved grant in force today (when the data is
    read, whatever date the rule is evaluated for) for every field the rule reads of
    another department's datasets (its own it reads without one)."""
    today = timezone.localdate()
    department = Department.objects.filter(code=rule.department).first()
    if department is None:
        raise DataNotGranted()
    own = set(Dataset.objects.filter(provider=department).values_list("code", flat=True))
    for code, fields in rule.needs(on).items():
        if code in own:
            continue
        grants = AccessGrant.objects.filter(
            consumer=department,
            dataset__code=code,
            status=AccessGrant.Status.APPROVED,
            mode=AccessGrant.Mode.QUERY,
            valid_from__lte=today,
            valid_until__gte=today,
        )
        if not any(fields <= set(g.fields) for g in grants):
            raise DataNotGranted(dataset=code, fields=sorted(fields))
    return department


def _item(rule: EntitlementRule, department: Department) -> ServiceItem:
    """The catalog item the rule's grants are cases of: one of the granting department's."""
    item = (
        ServiceItem.objects.filter(code=rule.item, department=department)
        .select_related("department")
        .first()
    )
    if item is None:
        raise RuleItemMissing(item=rule.item)
    return item


def _rules(rule: str | None, on: dt.date) -> list[EntitlementRule]:
    if rule is None:
        return [r for r in entitlement_rules_all() if r.in_force(on)]
    found = entitlement_rule_in_force(rule, on=on)
    if found is None:
        raise RuleNotFound()
    return [found]


def _needs(rules: list[EntitlementRule], on: dt.date) -> dict[str, set[str]]:
    wanted: dict[str, set[str]] = {}
    for rule in rules:
        for code, fields in rule.needs(on).items():
            wanted.setdefault(code, set()).update(fields)
    return wanted


def entitlements_snapshot(
    *,
    actor: Any,
    directory: Path,
    rule: str | None = None,
    on: dt.date | None = None,
    bucket_persons: int = BUCKET_PERSONS,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Take the snapshot that runs of one rule (or of every rule in force) read: the fields
    they need, each under its granting department's grants; its manifest. The read of the
    whole population is audited with the fields and row counts."""
    on = on or timezone.localdate()
    rules = _rules(rule, on)
    for each in rules:
        _grants_check(each, on)
    needs = _needs(rules, on)
    manifest = snapshot_export(
        needs, directory=directory, bucket_persons=bucket_persons, progress=progress
    )
    audit_record(
        action="entitlement.snapshot",
        actor=actor,
        purpose=_("Entitlement without applying: snapshot of the base databases"),
        after={
            "rules": [r.code for r in rules],
            "fields": {code: sorted(fields) for code, fields in sorted(needs.items())},
            "persons": manifest["persons"],
            "rows": {code: d["rows"] for code, d in manifest["datasets"].items()},
            "taken_at": manifest["taken_at"],
        },
    )
    return manifest


def entitlements_run(
    *,
    actor: Any,
    rule: str | None = None,
    dry_run: bool = False,
    on: dt.date | None = None,
    progress: Progress | None = None,
    snapshot: Path | None = None,
    bucket_persons: int = BUCKET_PERSONS,
    workers: int | None = None,
) -> list[RunOutcome]:
    """Run one rule (by code) or every rule in force; return each run's outcome.

    `snapshot` names a snapshot directory (`entitlements_snapshot`); without one, the run
    takes its own, in buckets of `bucket_persons` people, and removes it afterwards.

    Each bucket commits on its own (on PostgreSQL, `workers` of them at once, by default
    settings.ENTITLEMENT_RUN_WORKERS), so a run of a whole province holds no transaction
    open for its length; one that stops part way leaves whole buckets done and its run
    unfinished, and the next run does the rest."""
    on = on or timezone.localdate()
    rules = _rules(rule, on)
    workers = workers or settings.ENTITLEMENT_RUN_WORKERS
    if snapshot is not None:
        return [_run(r, actor, dry_run, on, progress, snapshot, workers) for r in rules]
    for each in rules:
        _item(each, _grants_check(each, on))  # before anything is read
    with tempfile.TemporaryDirectory(prefix="tongban-snapshot-") as taken:
        directory = Path(taken)
        needs = _needs(rules, on)
        snapshot_export(
            needs, directory=directory, bucket_persons=bucket_persons, progress=progress
        )
        return [_run(r, actor, dry_run, on, progress, directory, workers) for r in rules]


@dataclass
class RulePreview:
    """A dry run's counts and the first of the people it would newly grant."""

    rule: EntitlementRule
    run: EntitlementRun
    people: list[Person]
    limit: int
    on: dt.date  # the day evaluated: today, or the day a rule not yet in force takes effect
    upcoming: bool


def entitlements_preview(
    *, rule: EntitlementRule, actor: User, limit: int = PREVIEW_LIMIT
) -> RulePreview:
    """A dry run of one rule (audited: it reads the population) naming the first `limit`
    people it would newly grant, by ID number; the caller checks who may. A rule not yet in
    force is previewed for the day it takes effect, on today's data: who would be granted
    then, before it is; one that has ended is not found."""
    today = timezone.localdate()
    on = rule.previewed_on(today)
    if on is None:
        raise RuleNotFound()
    (outcome,) = entitlements_run(rule=rule.code, dry_run=True, actor=actor, on=on)
    people = Person.objects.filter(pk__in=outcome.newly_eligible[:limit]).order_by("resident_id")
    return RulePreview(
        rule=rule, run=outcome.run, people=list(people), limit=limit, on=on, upcoming=on > today
    )


@contextlib.contextmanager
def _lock(rule: EntitlementRule) -> Iterator[None]:
    """Runs of one rule take turns (SQLite serializes writers anyway): a lock held across
    a run's transactions, or to the end of the caller's if it runs inside one."""
    if connection.vendor != "postgresql":
        yield
        return
    key = zlib.crc32(f"entitlements:{rule.code}".encode())
    nested = connection.in_atomic_block
    lock = "pg_advisory_xact_lock" if nested else "pg_advisory_lock"
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {lock}(%s)", [key])
    try:
        yield
    finally:
        if not nested:  # the session's lock; a transaction's goes with it
            with contextlib.suppress(DatabaseError), connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_unlock(%s)", [key])


def _held(rule: EntitlementRule, amount: Any) -> pa.Table:
    """Every grant of the rule: id, person, status, and whether it is under today's amount
    and rule version (1) or not (0)."""
    current = models.Case(
        models.When(amount=amount, rule_version=rule.version, then=Value(1)),
        default=Value(0),
        output_field=IntegerField(),
    )
    rows = (
        Entitlement.objects.filter(rule_code=rule.code)
        .annotate(current=current)
        .values_list("pk", "person_id", "status", "current", "case_id")
        .order_by()
    )
    schema = pa.schema(
        [
            ("id", pa.int64()),
            ("person", pa.int64()),
            ("status", pa.string()),
            ("current", pa.int64()),
            ("case", pa.int64()),
        ]
    )
    return queryset_table(rows, schema)


def _by_bucket(held: pa.Table, buckets: int) -> Callable[[int], pa.Table]:
    """The grants of each bucket, sorted into place once: a bucket's are a slice, not a scan
    of every grant (at a hundred million residents, a hundred buckets of twelve million)."""
    keys = bucket_of(held["person"], buckets)
    order = pc.sort_indices(keys)
    held = held.take(order)
    counts = pa.table({"bucket": keys}).group_by("bucket").aggregate([("bucket", "count")])
    slices, start = {}, 0
    for bucket, count in sorted(
        zip(counts["bucket"].to_pylist(), counts["bucket_count"].to_pylist(), strict=True)
    ):
        slices[bucket] = held.slice(start, count)
        start += count
    return lambda bucket: slices.get(bucket, held.slice(0, 0))


def _stored(message: Promise) -> str:
    """A text kept with the case, in the platform's language whoever ran the rule."""
    with translation.override(settings.LANGUAGE_CODE):
        return str(message)


def _count(mask: pa.Array) -> int:
    return int(pc.sum(mask.cast(pa.int64())).as_py() or 0)


@dataclass
class _Sweep:
    """What one run does, bucket by bucket."""

    rule: EntitlementRule
    run: EntitlementRun
    on: dt.date
    actor: Any
    amount: Any
    buckets: int
    applied: pa.Table  # approved applications for the item that are no grant yet: person, case
    now: dt.datetime = field(default_factory=timezone.now)

    def bucket(
        self, bucket: int, chunk: Snapshot, mine: pa.Table, dry_run: bool
    ) -> tuple[Counter[str], pa.Array]:
        """Evaluate one bucket of the snapshot against the grants `mine` in it, and write
        what changes, its audit entries, messages and counts on the run in a transaction of
        its own; its counts and the people it newly grants."""
        eligible = chunk.subjects.filter(batch_evaluate(self.rule, chunk, on=self.on))
        new = eligible.filter(pc.invert(pc.is_in(eligible, value_set=mine["person"])))
        still = pc.is_in(mine["person"], value_set=eligible)
        granted = pc.equal(mine["status"], Status.GRANTED)
        lost = mine.filter(pc.and_(granted, pc.invert(still)))
        revalued = mine.filter(pc.and_(pc.and_(granted, still), pc.equal(mine["current"], 0)))
        holding = pc.is_in(mine["status"], value_set=pa.array([Status.GRANTED, Status.REVIEW]))
        declined = pc.equal(mine["status"], Status.DECLINED)
        counts = Counter(
            persons=len(chunk.subjects),
            eligible=len(eligible),
            granted=len(new),
            to_review=lost.num_rows,
            revalued=revalued.num_rows,
            unchanged=_count(pc.and_(still, holding)) - revalued.num_rows,
            declined=_count(pc.and_(still, declined)),
        )
        outermost = not connection.in_atomic_block
        with transaction.atomic():
            if outermost and connection.vendor == "postgresql":
                # The key checks of each row run as it is written, not at the commit, where
                # this bucket holds the audit log's head and the run's row that the other
                # workers' buckets wait for.
                with connection.cursor() as cursor:
                    cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
            if not dry_run:
                self._grant(bucket, chunk, new)
                self._to_review(bucket, lost)
                self._revalue(bucket, revalued)
                _notify(self.rule, self.amount, new)
            EntitlementRun.objects.filter(pk=self.run.pk).update(
                **{name: F(name) + value for name, value in counts.items()}
            )
        return counts, new

    def _audit(
        self, action: str, bucket: int, persons: pa.Array, ids: pa.Array, **what: Any
    ) -> None:
        audit_record(
            action=action,
            actor=self.actor,
            target=self.run,
            after={
                "rule": self.rule.code,
                "bucket": bucket,
                "buckets": self.buckets,
                "count": len(ids),
                "digest": pairs_digest(persons, ids),
            }
            | what,
        )

    def _grant(self, bucket: int, chunk: Snapshot, persons: pa.Array) -> None:
        """Grant these people. A grant is the case of their approved application for the
        benefit when they have one (the data had missed them), which then gets the grant's
        step instead of a second case; the others' case ids are reserved now and their cases
        opened after the run (`grant_cases_open`), so that the run writes one row per grant."""
        if not len(persons):
            return
        count = len(persons)
        applied = pc.is_in(persons, value_set=self.applied["person"])
        adopted, persons = persons.filter(applied), persons.filter(pc.invert(applied))
        adopted_cases = self.applied["case"].take(
            pc.index_in(adopted, value_set=self.applied["person"])
        )
        granted.case_steps_add(
            adopted_cases, action=granted.BENEFIT_HOLD, actor=self.actor, now=self.now
        )
        ops = connection.ops
        cases = pa.concat_arrays([adopted_cases.combine_chunks(), ids_reserve(Case, len(persons))])
        persons = pa.concat_arrays([adopted, persons])
        ids = ids_reserve(Entitlement, count)
        rows = pa.table(
            {
                "id": ids,
                "person_id": persons,
                "case_id": cases,
                "rule_code": pa.repeat(self.rule.code, count),
                "rule_version": pa.repeat(self.rule.version, count),
                "status": pa.repeat(str(Status.GRANTED), count),
                "amount": pa.repeat(str(ops.adapt_decimalfield_value(self.amount, 10, 2)), count),
                "facts": facts_build(self.rule, chunk, persons, on=self.on),
                "granted_at": pa.repeat(str(ops.adapt_datetimefield_value(self.now)), count),
                "granted_by_run_id": pa.repeat(self.run.pk, count),
            }
        )
        rows_append(Entitlement._meta.db_table, rows)
        self._audit(
            "entitlement.grant_batch",
            bucket,
            persons,
            ids,
            version=self.rule.version,
            amount=self.amount,
        )

    def _to_review(self, bucket: int, lost: pa.Table) -> None:
        if not lost.num_rows:
            return
        cases = _cases(lost)
        with ids_chosen(lost["id"]) as chosen:
            Entitlement.objects.filter(pk__in=chosen, status=Status.GRANTED).update(
                status=Status.REVIEW, review_at=self.now
            )
        granted.case_steps_add(
            cases,
            action=granted.BENEFIT_REVIEW,
            actor=self.actor,
            now=self.now,
        )
        self._audit(
            "entitlement.review_batch",
            bucket,
            lost["person"],
            lost["id"],
            before={"status": Status.GRANTED},
            status=Status.REVIEW,
        )

    def _revalue(self, bucket: int, revalued: pa.Table) -> None:
        """A new amount (or rule version) in force applies to the grants held under it."""
        if not revalued.num_rows:
            return
        cases = _cases(revalued)
        with ids_chosen(revalued["id"]) as chosen:
            Entitlement.objects.filter(pk__in=chosen, status=Status.GRANTED).update(
                amount=self.amount, rule_version=self.rule.version
            )
        granted.case_steps_add(
            cases,
            action=granted.BENEFIT_REVALUE,
            actor=self.actor,
            now=self.now,
            note=_stored(gettext_lazy("%(amount)s yuan a month")) % {"amount": self.amount},
        )
        self._audit(
            "entitlement.revalue_batch",
            bucket,
            revalued["person"],
            revalued["id"],
            version=self.rule.version,
            amount=self.amount,
        )


def _run(
    rule: EntitlementRule,
    actor: Any,
    dry_run: bool,
    on: dt.date,
    progress: Progress | None,
    directory: Path,
    workers: int,
) -> RunOutcome:
    started = timezone.now()
    department = _grants_check(rule, on)
    item = _item(rule, department)
    needs = rule.needs(on)
    manifest = snapshot_manifest(directory, needs)
    with _lock(rule):
        amount = rule.amount_on(on)
        with transaction.atomic():  # first, so that grants can name their run
            run = EntitlementRun.objects.create(
                rule_code=rule.code,
                rule_version=rule.version,
                evaluated_on=on,
                dry_run=dry_run,
                actor=actor_label(actor),
                started_at=started,
            )
            # Made now, once: the grants' cases are opened by it, on several connections.
            system_account(department, actor, suffix=GRANTS_SUFFIX)
        held = _held(rule, amount)
        applied = granted.cases_applied(item)
        applied = applied.filter(pc.invert(pc.is_in(applied["case"], value_set=held["case"])))
        sweep = _Sweep(rule, run, on, actor, amount, manifest["buckets"], applied)
        held_in = _by_bucket(held, manifest["buckets"])
        del held  # sorted into `held_in`: not kept twice
        if dry_run or connection.in_atomic_block or connection.vendor != "postgresql":
            workers = 1  # SQLite has one writer; a caller's transaction is one connection's
        preview: list[int] = []
        total: Counter[str] = Counter()
        for counts, new in _buckets(
            sweep, snapshot_chunks(directory, needs), held_in, dry_run, workers
        ):
            total.update(counts)
            preview += new[: max(0, PREVIEW_MAX - len(preview))].to_pylist()
            if progress:
                progress("evaluated", total["persons"], manifest["persons"])
        with transaction.atomic():
            run.refresh_from_db()
            run.finished_at = timezone.now()
            run.save(update_fields=["finished_at"])
            audit_record(
                action="entitlement.run" if not dry_run else "entitlement.dry_run",
                actor=actor,
                target=run,
                purpose=_("Entitlement without applying: %(name)s (%(department)s)")
                % {"name": rule.name, "department": department.name},
                after={
                    "rule": rule.code,
                    "version": rule.version,
                    "fields": _fields(rule, on),
                    "snapshot": manifest["taken_at"],
                }
                | run.counts,
            )
    return RunOutcome(run=run, newly_eligible=preview)


def _buckets(
    sweep: _Sweep,
    chunks: Iterator[tuple[int, Snapshot]],
    held_in: Callable[[int], pa.Table],
    dry_run: bool,
    workers: int,
) -> Iterator[tuple[Counter[str], pa.Array]]:
    """Each bucket's counts and newly granted people, as its transaction commits: on
    `workers` connections at once (the database's cores share the writing and its key
    checks), while the next bucket is read."""
    if workers == 1:
        for bucket, chunk in chunks:
            yield sweep.bucket(bucket, chunk, held_in(bucket), dry_run)
        return
    with ThreadPoolExecutor(workers, thread_name_prefix="entitlements") as pool:
        pending: set[Future[tuple[Counter[str], pa.Array]]] = set()
        for bucket, chunk in chunks:
            if len(pending) == workers:
                done, pending = wait(pending, return_when=FIRST_COMPLETED)
                yield from (future.result() for future in done)
            pending.add(
                pool.submit(_own_connection, sweep.bucket, bucket, chunk, held_in(bucket), dry_run)
            )
        yield from (future.result() for future in as_completed(pending))


def _own_connection(work: Callable[..., _T], *args: Any) -> _T:
    """`work` in a worker thread, on a database connection of the thread's own, closed
    when it is done."""
    try:
        return work(*args)
    finally:
        connections.close_all()


def _fields(rule: EntitlementRule, on: dt.date) -> dict[str, list[str]]:
    return {code: sorted(fields) for code, fields in rule.needs(on).items()}


def _notify(rule: EntitlementRule, amount: Any, persons: pa.Array) -> None:
    """An in-app message to each account of these people, just granted (no case: nothing
    was applied for), and of their guardians where the rule names them (a child's parents),
    in the platform's language like the cases' messages."""
    if not len(persons):
        return
    with translation.override(settings.LANGUAGE_CODE), ids_chosen(persons) as chosen:
        if rule.amount_note:  # the amount is not what they are paid: leave it out
            text = _(
                "You now receive %(name)s without applying. See why under My benefits, "
                "where you may also decline it."
            ) % {"name": rule.name}
        else:
            text = _(
                "You now receive %(name)s (%(amount)s yuan a month) without applying. See "
                "why under My benefits, where you may also decline it."
            ) % {"name": rule.name, "amount": amount}
        users = User.objects.filter(role=User.Role.CITIZEN, is_active=True, person__in=chosen)
        Notification.objects.bulk_create(
            (
                Notification(user=user, event="entitlement_grant", text=text)
                for user in users.iterator()
            ),
            batch_size=NOTIFY_BATCH,
        )
        if rule.guardians is not None:
            granted = Person.objects.filter(pk__in=chosen)
            Notification.objects.bulk_create(
                _guardian_notices(rule, rule.guardians, granted, amount), batch_size=NOTIFY_BATCH
            )


def _guardian_notices(
    rule: EntitlementRule, guardians: Guardians, granted: QuerySet[Person], amount: Any
) -> Iterator[Notification]:
    """A message to each account of the guardians the granted people's rows name."""
    rows = Record.objects.filter(
        dataset__code=guardians.dataset, subject__in=granted.values("resident_id")
    ).values_list("subject", "data")
    named: dict[str, set[str]] = {}  # a guardian's resident ID → their children's
    for subject, data in rows.iterator():
        for name in guardians.fields:
            if data.get(name):
                named.setdefault(str(data[name]), set()).add(subject)
    children = dict(granted.values_list("resident_id", "name"))
    users = User.objects.filter(
        person__resident_id__in=named, role=User.Role.CITIZEN, is_active=True
    ).values_list("pk", "person__resident_id")
    for user, resident_id in users.iterator():
        for child in sorted(named[resident_id]):
            yield Notification(
                user_id=user,
                event="entitlement_grant",
                text=_(
                    "%(child)s now receives %(name)s (%(amount)s yuan a month) without "
                    "applying; it is paid to the guardian's account."
                )
                % {"child": children[child], "name": rule.name, "amount": amount},
            )


def _to_review(rule: EntitlementRule, person_ids: Sequence[int], *, actor: Any) -> None:
    """Send these people's grants of the rule to review, each audited (a few at a time:
    the silent verification's overdue holders; a run sends its own in bulk)."""
    if not person_ids:
        return
    now = timezone.now()
    flagged = Entitlement.objects.filter(
        rule_code=rule.code, status=Status.GRANTED, person_id__in=person_ids
    ).select_related("person")
    grant_cases_open(flagged)
    for entitlement in flagged:
        audit_record(
            action="entitlement.review",
            actor=actor,
            target=entitlement,
            subject=("person", entitlement.person.resident_id),
            before={"status": Status.GRANTED},
            after={"status": Status.REVIEW},
        )
    cases = [e.case_id for e in flagged if e.case_id is not None]
    flagged.update(status=Status.REVIEW, review_at=now)
    granted.case_steps_add(
        pa.array(cases, pa.int64()),
        action=granted.BENEFIT_REVIEW,
        actor=actor,
        now=now,
        note=_stored(gettext_lazy("Not confirmed in time")),
    )


def _rule_staff_check(entitlement: Entitlement, actor: User) -> EntitlementRule:
    rule = next((r for r in entitlement_rules_all() if r.code == entitlement.rule_code), None)
    department = actor.department if actor.role == User.Role.STAFF else None
    if rule is None or department is None or department.code != rule.department:
        raise EntitlementNotFound()
    return rule


@transaction.atomic
def entitlement_review_decide(
    *, entitlement: Entitlement, actor: User, keep: bool, note: str
) -> Entitlement:
    """Staff of the granting department decide a grant whose holder no longer meets the
    conditions: keep it (the data was wrong or late) or end it, with a reason; an ended
    grant's holder is told in-app."""
    locked = (
        Entitlement.objects.select_for_update(of=("self",))
        .select_related("person")
        .get(pk=entitlement.pk)
    )
    rule = _rule_staff_check(locked, actor)
    note = " ".join(note.split())
    if not note or len(note) > 200:
        raise ReviewNoteInvalid()
    if locked.status != Status.REVIEW:
        raise EntitlementNotInReview()
    locked.status = Status.GRANTED if keep else Status.ENDED
    locked.ended_at = None if keep else timezone.now()
    locked.save(update_fields=["status", "ended_at"])
    _step(locked, granted.BENEFIT_KEEP if keep else granted.BENEFIT_END, actor, note=note)
    audit_record(
        action="entitlement.review_keep" if keep else "entitlement.end",
        actor=actor,
        target=locked,
        subject=("person", locked.person.resident_id),
        before={"status": Status.REVIEW},
        after={"status": locked.status, "note": note},
    )
    if not keep:
        with translation.override(settings.LANGUAGE_CODE):
            text = _("%(name)s has ended: %(note)s") % {"name": rule.name, "note": note}
        users = User.objects.filter(person=locked.person, role=User.Role.CITIZEN)
        Notification.objects.bulk_create(
            Notification(user=user, event="entitlement_end", text=text) for user in users
        )
    return locked


@transaction.atomic
def entitlement_decline(*, entitlement: Entitlement, actor: User) -> Entitlement:
    """The person declines a grant (放弃), or a guardian the rule names does for the child
    who holds it; later runs do not grant it again."""
    locked = (
        Entitlement.objects.select_for_update(of=("self",))
        .select_related("person")
        .get(pk=entitlement.pk)
    )
    person = actor.person
    if person is None or (person.pk != locked.person_id and not guardian_of(locked, person)):
        raise EntitlementNotFound()
    if locked.status not in (Status.GRANTED, Status.REVIEW):
        raise EntitlementNotDeclinable()
    before = {"status": locked.status}
    locked.status, locked.declined_at = Status.DECLINED, timezone.now()
    locked.save(update_fields=["status", "declined_at"])
    _step(locked, granted.BENEFIT_DECLINE, actor)
    audit_record(
        action="entitlement.decline",
        actor=actor,
        target=locked,
        subject=("person", locked.person.resident_id),
        before=before,
        after={"status": locked.status},
    )
    return locked


def _step(entitlement: Entitlement, action: str, actor: Any, *, note: str = "") -> None:
    """The grant's change on its case's timeline, its case opened first if need be."""
    grant_cases_open(Entitlement.objects.filter(pk=entitlement.pk))
    if entitlement.case_id is not None:
        granted.case_steps_add(
            pa.array([entitlement.case_id], pa.int64()),
            action=action,
            actor=actor,
            now=timezone.now(),
            note=note,
        )


def _cases(grants: pa.Table) -> pa.Array:
    """The cases of these grants (columns id and case), opening those not opened yet."""
    with ids_chosen(grants["id"]) as chosen:
        grant_cases_open(Entitlement.objects.filter(pk__in=chosen))
    return pc.drop_null(grants["case"])  # None: granted before grants were cases


def _unopened(entitlements: QuerySet[Entitlement]) -> QuerySet[Entitlement]:
    """The grants whose reserved case is not opened yet."""
    opened = Case.objects.filter(pk=OuterRef("case_id"))
    return entitlements.filter(case_id__isnull=False).exclude(Exists(opened))


@transaction.atomic
def grant_cases_open(entitlements: QuerySet[Entitlement]) -> int:
    """Open the case (办件) of each of these grants that is not opened yet; how many were.

    A run writes its grants with their case ids reserved, and leaves the cases to
    `grant_cases_open_all`, which the worker's task and the command run after it; a
    holder's own pages, and any later step on a grant, open the ones they need before then.
    Each case is what the run would have opened: numbered from its id and the day of the
    grant, submitted by the granting department's system account, decided by whoever ran
    the rule. The grants to open are locked (in id order, as every opener takes them), then
    read again: one that another opener held meanwhile is open now, and left alone."""
    pending = _unopened(entitlements)
    if not list(pending.select_for_update(of=("self",)).order_by("pk").values_list("pk")):
        return 0  # the usual case on a holder's page: no row locked, nothing written
    rows = pending.values_list("case_id", "person_id", "granted_by_run_id")
    schema = pa.schema([("case", pa.int64()), ("person", pa.int64()), ("run", pa.int64())])
    waiting = queryset_table(rows.order_by(), schema)
    rules = {rule.code: rule for rule in entitlement_rules_all()}
    opened = 0
    for run in EntitlementRun.objects.filter(pk__in=pc.unique(waiting["run"]).to_pylist()):
        rule = rules.get(run.rule_code)
        if rule is None:  # taken out of the rule book: its item and department are unknown
            continue
        grants = waiting.filter(pc.equal(waiting["run"], run.pk))
        # A run grants at one instant: its grants' cases are dated by it.
        at = Entitlement.objects.filter(case_id=grants["case"][0].as_py()).get().granted_at
        department = Department.objects.get(code=rule.department)
        reason = _stored(
            gettext_lazy("Meets every condition of %(name)s in the shared data (%(basis)s).")
        ) % {"name": rule.name, "basis": rule.legal_reference}
        granted.granted_cases_open(
            ids=grants["case"].combine_chunks(),
            item=_item(rule, department),
            persons=grants["person"].combine_chunks(),
            account=system_account(department, run.actor, suffix=GRANTS_SUFFIX),
            actor=run.actor,
            reason=reason,
            now=at,
        )
        opened += grants.num_rows
    return opened


def grant_cases_open_all(*, progress: Progress | None = None, workers: int | None = None) -> int:
    """Open the cases of every grant not opened yet, OPEN_CHUNK grants (by id) a
    transaction, on `workers` connections at once on PostgreSQL (settings.
    ENTITLEMENT_RUN_WORKERS by default); how many were opened."""
    waiting = _unopened(Entitlement.objects.all())
    low, high = waiting.aggregate(low=Min("pk"), high=Max("pk")).values()
    if low is None:
        return 0
    workers = workers or settings.ENTITLEMENT_RUN_WORKERS
    if connection.in_atomic_block or connection.vendor != "postgresql":
        workers = 1

    def chunk(start: int) -> int:
        grants = Entitlement.objects.filter(pk__gte=start, pk__lt=start + OPEN_CHUNK)
        return grant_cases_open(grants)

    starts = range(low, high + 1, OPEN_CHUNK)
    opened = 0
    with ThreadPoolExecutor(workers, thread_name_prefix="grant-cases") as pool:
        done = (
            map(chunk, starts)
            if workers == 1
            else pool.map(lambda start: _own_connection(chunk, start), starts)
        )
        for start, count in zip(starts, done, strict=True):
            opened += count
            if progress:  # over the range of grant ids, which a chunk covers a part of
                progress("cases opened", min(start + OPEN_CHUNK, high + 1) - low, high + 1 - low)
    return opened


def grant_cases_open_of(user: User) -> None:
    """Open the cases of the user's own grants not opened yet, before a page of theirs
    lists them (我的待遇, 我的办件: `cases.services.before_cases_listed`)."""
    if user.person_id is not None:
        grant_cases_open(Entitlement.objects.filter(person_id=user.person_id))
