"""Cases the platform opens itself: a benefit granted from the shared data without anybody
applying (免申即享) is a case (办件) like an application — numbered, of a catalog item,
handled by its department, with a timeline the holder and the department's staff read —
but it has no submission, and it is decided and completed when it is opened.

A sweep may grant millions at once, so these cases and their timeline steps are written in
bulk (`core.bulk.rows_append`: COPY on PostgreSQL) with ids reserved beforehand, and their
numbers are made from those ids instead of drawn at random and checked one by one. The
granting app reserves the ids with its grants and opens the cases after, dated as the
grants are."""

import datetime as dt
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
from django.db import connection
from django.utils import timezone

from tongban.audit.services import actor_label
from tongban.catalog.models import ServiceItem
from tongban.core.bulk import queryset_table, rows_append
from tongban.people.models import User

from .models import Case, CaseEvent

State = Case.State

# Timeline steps of a granted benefit (labelled in `views.ACTION_LABELS`).
GRANT = "grant"
BENEFIT_DECLINE = "benefit_decline"
BENEFIT_REVIEW = "benefit_review"
BENEFIT_KEEP = "benefit_keep"
BENEFIT_END = "benefit_end"
BENEFIT_REVALUE = "benefit_revalue"
BENEFIT_HOLD = "benefit_hold"  # an approved application's benefit, now held and checked

# The alphabet of `services.case_number_new`'s random part, which has no Z: a number whose
# part starts with Z is one of these, and never equals a number drawn at random.
ALPHABET = "0123456789ABCDEFGHJKLMNPQRSTUVWXY"
MARK = "Z"
DIGITS = 7
SPAN = len(ALPHABET) ** DIGITS
# An odd multiplier prime to 33 permutes 0..SPAN-1, so consecutive cases do not get
# consecutive numbers; SPAN * SCRAMBLE stays below 2**63.
SCRAMBLE = 200_000_033


def granted_numbers(*, region: str, day: dt.date, ids: pa.Array) -> pa.Array:
    """Case numbers for these case ids, read out like any other: region, date, then Z and
    seven characters that are the (scrambled) id in base 33 — unique because ids are."""
    if len(ids) and pc.max(ids).as_py() >= SPAN:
        raise OverflowError("case ids have outgrown the granted case numbers")
    value = pc.multiply_checked(ids.cast(pa.int64()), SCRAMBLE)
    value = pc.subtract(value, pc.multiply(pc.divide(value, SPAN), SPAN))
    alphabet = pa.array(list(ALPHABET))
    digits = []
    for _ in range(DIGITS):
        quotient = pc.divide(value, len(ALPHABET))
        digits.append(alphabet.take(pc.subtract(value, pc.multiply(quotient, len(ALPHABET)))))
        value = quotient
    prefix = f"{region}{day:%Y%m%d}{MARK}"
    return pc.binary_join_element_wise(prefix, *reversed(digits), "")


def granted_cases_open(
    *,
    ids: pa.Array,
    item: ServiceItem,
    persons: pa.Array,
    account: User,
    actor: Any,
    reason: str,
    now: dt.datetime,
) -> None:
    """Open one completed, approved case of `item` for each person id, with the case id
    reserved for it (`core.bulk.ids_reserve`) in the same place of `ids`, submitted by the
    department's system `account` and decided at `now` by `actor` (a rule run) for
    `reason`."""
    count = len(persons)
    if not count:
        return
    ops = connection.ops
    at = str(ops.adapt_datetimefield_value(now))
    day = timezone.localdate(now)
    label = actor_label(actor)
    rows = {
        "id": ids,
        "number": granted_numbers(region=item.department.region_code, day=day, ids=ids),
        "item_id": pa.repeat(item.pk, count),
        "department_id": pa.repeat(item.department_id, count),
        "applicant_person_id": persons,
        "submitted_by_id": pa.repeat(account.pk, count),
        "state": pa.repeat(str(State.COMPLETED), count),
        "form_data": pa.repeat("{}", count),
        "materials": pa.repeat("[]", count),
        "materials_fetched": pa.repeat(0, count),
        "materials_uploaded": pa.repeat(0, count),
        "submitted_at": pa.repeat(at, count),
        "due_at": pa.repeat(str(ops.adapt_datefield_value(day)), count),
        "due_provisional": pa.repeat(False, count),
        "supplement_note": pa.repeat("", count),
        "decision": pa.repeat(str(Case.Decision.APPROVED), count),
        "decision_reason": pa.repeat(reason, count),
        "decided_at": pa.repeat(at, count),
        "decided_by": pa.repeat(label, count),
        "closed_at": pa.repeat(at, count),
        "updated_at": pa.repeat(at, count),
    }
    # Their first step, the grant, is the case itself (`selectors.case_timeline`).
    rows_append(Case._meta.db_table, pa.table(rows))


def cases_applied(item: ServiceItem) -> pa.Table:
    """The approved applications for `item` by a person (someone the data had missed applied,
    or was approved by staff), the latest per applicant: columns person and case."""
    rows = (
        Case.objects.filter(
            item=item,
            decision=Case.Decision.APPROVED,
            submission__isnull=False,
            applicant_person__isnull=False,
        )
        .values_list("applicant_person_id", "pk")
        .order_by()
    )
    table = queryset_table(rows, pa.schema([("person", pa.int64()), ("case", pa.int64())]))
    latest = table.group_by("person").aggregate([("case", "max")])
    return latest.rename_columns(["person", "case"])


def case_steps_add(
    case_ids: pa.Array,
    *,
    action: str,
    actor: Any,
    now: dt.datetime,
    note: str = "",
) -> None:
    """The same timeline step on each of these cases, whose state it does not change."""
    count = len(case_ids)
    if not count:
        return
    rows = {
        "case_id": case_ids,
        "at": pa.repeat(str(connection.ops.adapt_datetimefield_value(now)), count),
        "actor": pa.repeat(actor_label(actor), count),
        "action": pa.repeat(action, count),
        "from_state": pa.repeat("", count),
        "to_state": pa.repeat("", count),
        "note": pa.repeat(note, count),
    }
    rows_append(CaseEvent._meta.db_table, pa.table(rows))
