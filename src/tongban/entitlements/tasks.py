"""Background runs of the entitlement rules (免申即享): every rule in force on the schedule
(settings.TONGBAN_SCHEDULE), or one rule when its granting department asks (立即运行).
Runs are idempotent: the same rule on the same data grants nothing the second time."""

from typing import Any

from django.db import transaction
from django.utils import timezone
from django_tasks import task

from tongban.audit.services import actor_label, audit_record
from tongban.core.errors import TongbanError
from tongban.people.models import User

from .errors import RuleNotFound
from .rulebook import EntitlementRule, entitlement_rules_all
from .services import entitlements_run, grant_cases_open_all
from .verification import verifications_sweep

# Runs started by the clock are recorded under this name; runs asked for by staff under
# the officer who asked.
SCHEDULER_ACTOR = "system:scheduler"


@task()
def entitlements_run_task(
    *, rule: str | None = None, actor: str = SCHEDULER_ACTOR
) -> list[dict[str, Any]]:
    """Run one rule, or every rule in force, each in its own transaction, then open the
    cases of what they granted; return each run's counts. A rule that cannot run (say its
    data is no longer granted) does not keep the others from running; the task then fails
    naming it, so the failure shows."""
    today = timezone.localdate()
    codes = [rule] if rule else [r.code for r in entitlement_rules_all() if r.in_force(today)]
    done: list[dict[str, Any]] = []
    failed: list[TongbanError] = []
    for code in codes:
        try:
            (outcome,) = entitlements_run(rule=code, actor=actor)
        except TongbanError as error:
            error.add_note(f"rule {code}")
            failed.append(error)
        else:
            done.append({"rule": code, "run": outcome.run.pk} | outcome.run.counts)
    grant_cases_open_all()
    if failed:
        raise ExceptionGroup(f"{len(failed)} of {len(codes)} entitlement rules failed", failed)
    return done


@task()
def verifications_sweep_task(*, actor: str = SCHEDULER_ACTOR) -> list[dict[str, Any]]:
    """静默认证: verify the holders of every rule in force that asks for verification (the
    pension), from data signals; the sweep asks those with none, once a period, and sends
    them to review past the deadline, so running it daily changes nothing in between."""
    today = timezone.localdate()
    return [
        {"rule": outcome.rule_code, "period": outcome.period} | outcome.counts
        for outcome in (
            verifications_sweep(actor=actor, rule=rule.code, on=today)
            for rule in entitlement_rules_all()
            if rule.in_force(today) and rule.verification is not None
        )
    ]


@transaction.atomic
def entitlements_run_enqueue(*, rule: EntitlementRule, actor: User) -> None:
    """Queue a run of one rule for staff of its granting department (the caller checks who
    may); the request is audited now, the run itself when a worker performs it, under the
    name of the officer who asked. A rule not in force today is not run."""
    if not rule.in_force(timezone.localdate()):
        raise RuleNotFound()
    audit_record(action="entitlement.run_queued", actor=actor, after={"rule": rule.code})
    label = actor_label(actor)
    transaction.on_commit(lambda: entitlements_run_task.enqueue(rule=rule.code, actor=label))
