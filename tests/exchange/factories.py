"""Datasets, rows, grants and callers for exchange tests, made through the exchange services
where a service exists (so they pass the same validation as real data)."""

import datetime as dt
from typing import Any

import yaml
from django.utils import timezone

from tests.people.factories import make_department, make_user
from tongban.exchange import services
from tongban.exchange.models import AccessGrant, Dataset, Record
from tongban.people.models import Department, User

CATALOG = "src/tongban/exchange/demo/datasets.yaml"


def load_datasets(*codes: str) -> dict[str, Dataset]:
    """The demo catalog's datasets named (all if none), with the provider departments they
    name created on the way."""
    with open(CATALOG, encoding="utf-8") as handle:
        document = yaml.safe_load(handle)
    rows = [d for d in document["datasets"] if not codes or d["code"] in codes]
    for row in rows:
        if not Department.objects.filter(code=row["provider"]).exists():
            make_department(code=row["provider"], name=f"{row['provider']} 局")
    services.dataset_catalog_load(data={"datasets": rows}, actor="test")
    return {d.code: d for d in Dataset.objects.filter(code__in=[r["code"] for r in rows])}


def put_rows(dataset: Dataset, *rows: dict[str, Any]) -> None:
    Record.objects.bulk_create(
        Record(dataset=dataset, subject=row[dataset.subject_field], data=row) for row in rows
    )


def make_grant(
    *,
    consumer: Department,
    dataset: Dataset,
    fields: list[str],
    mode: str = "query",
    purpose: str = "service_handling",
    full_id: bool = False,
    days: int = 30,
    status: str = "approved",
) -> AccessGrant:
    """A grant requested by a staff member of `consumer` and, unless `status` says
    otherwise, approved by a data administrator."""
    requester = make_user(role=User.Role.STAFF, department=consumer)
    grant = services.grant_request(
        dataset=dataset,
        fields=fields,
        mode=mode,
        purpose=purpose,
        legal_basis="《政务信息资源共享管理暂行办法》",
        valid_until=timezone.localdate() + dt.timedelta(days=days),
        full_id=full_id,
        actor=requester,
    )
    if status == "requested":
        return grant
    admin = make_user(role=User.Role.DATA_ADMIN)
    grant = services.grant_approve(grant=grant, actor=admin)
    if status == "revoked":
        grant = services.grant_revoke(grant=grant, actor=admin, note="不再需要")
    return grant
