"""Certificate-free resolution (免证办): where the platform gets each material of an item for
an applicant — the applicant's valid licenses first, then shared data the handling
department may read, else an upload — and the audited reads that fetch it.

Showing the form reads no personal data: `materials_resolve` looks at the applicant's own
licenses (their wallet), at the department's grants and the applicant's consents, and asks
only whether a base database holds a row about the applicant. That answer goes to the
applicant themself and to no department, and no field value leaves the database, so it is
not a department's read of their data. The read that is — the department fetching the
rows — happens at submission through the exchange (`exchange.services.data_query`) and is
audited with the case number, purpose and legal basis like any other query."""

import datetime as dt
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from django.db.models import Q, prefetch_related_objects
from django.utils import timezone

from tongban.audit.models import AuditEntry
from tongban.audit.services import audit_record
from tongban.catalog.models import LicenseType, Material, ServiceItem
from tongban.exchange.models import AccessGrant, Dataset, Purpose, Record, SharingClass
from tongban.exchange.services import Caller, data_query
from tongban.licensing.models import Consent, License
from tongban.people.models import Department, Organization, Person

from .models import Case

LICENSE = "license"
DATASET = "dataset"
UPLOAD = "upload"
PURPOSE = Purpose.SERVICE_HANDLING
READS_PER_MINUTE = 120
"""Exchange rate limit of one case's reads (its materials and its rules need a few)."""
LEGAL_BASIS_MAX = 200


@dataclass(frozen=True)
class MaterialResolution:
    """Where one material of one item comes from for this applicant."""

    item: ServiceItem
    material: Material
    source: str  # LICENSE, DATASET or UPLOAD
    license: License | None = None
    dataset: Dataset | None = None
    grant: AccessGrant | None = None  # None when the department reads its own data
    needs_consent: bool = False  # a conditional dataset the applicant has not consented to

    @property
    def key(self) -> str:
        return self.material.key

    @property
    def required(self) -> bool:
        return self.material.requirement == Material.Requirement.REQUIRED

    @property
    def fetched(self) -> bool:
        return self.source in (LICENSE, DATASET)

    @property
    def own_data(self) -> bool:
        return self.source == DATASET and self.grant is None

    def record(self) -> dict[str, Any]:
        """The material's entry in `Case.materials`, before any data is read."""
        entry: dict[str, Any] = {
            "key": self.key,
            "name": self.material.name,
            "required": self.required,
            "source": self.source,
        }
        if self.license is not None:
            entry |= {
                "license": self.license.identifier,
                "license_type": self.license.license_type.code,
                "license_name": self.license.license_type.name,
            }
        if self.dataset is not None:
            entry |= {
                "dataset": self.dataset.code,
                "dataset_name": self.dataset.name,
                "grant": self.grant.pk if self.grant is not None else None,
            }
        return entry


def applicant_code(applicant: Person | Organization) -> tuple[str, str]:
    """The applicant as the exchange and the audit log name subjects."""
    if isinstance(applicant, Person):
        return ("person", applicant.resident_id)
    return ("organization", applicant.credit_code)


def _holder(applicant: Person | Organization) -> dict[str, Any]:
    if isinstance(applicant, Person):
        return {"holder_person": applicant}
    return {"holder_organization": applicant}


def licenses_valid(
    *,
    applicant: Person | Organization,
    license_types: Iterable[LicenseType],
    today: dt.date | None = None,
) -> dict[int, License]:
    """The applicant's newest valid license of each type asked for (type id -> license)."""
    today = today or timezone.localdate()
    held: dict[int, License] = {}
    licenses = (
        License.objects.filter(
            **_holder(applicant),
            license_type__in=list(license_types),
            status=License.Status.VALID,
            valid_from__lte=today,
        )
        .filter(Q(valid_until__isnull=True) | Q(valid_until__gte=today))
        .select_related("license_type")
        .order_by("-issued_at", "-pk")
    )
    for license in licenses:
        held.setdefault(license.license_type_id, license)
    return held


def dataset_fits(dataset: Dataset, applicant: Person | Organization) -> bool:
    """Whether the dataset can hold rows about this kind of applicant at all. The license
    index (source `licenses`) lists every license of a holder, so it cannot say which
    material a row stands for: a material it names is met through its license types."""
    if dataset.sharing_class == SharingClass.NONE or dataset.source == Dataset.Source.LICENSES:
        return False
    kind = "person" if isinstance(applicant, Person) else "organization"
    return dataset.subject_kind in (kind, Dataset.SubjectKind.ANY)


def grants_for_reading(
    *, department: Department, datasets: Iterable[Dataset]
) -> dict[int, AccessGrant]:
    """The department's approved query grants in force for handling services, newest first
    per dataset (dataset id -> grant)."""
    today = timezone.localdate()
    grants: dict[int, AccessGrant] = {}
    for grant in AccessGrant.objects.filter(
        consumer=department,
        dataset__in=list(datasets),
        status=AccessGrant.Status.APPROVED,
        mode=AccessGrant.Mode.QUERY,
        purpose=PURPOSE,
        valid_from__lte=today,
        valid_until__gte=today,
    ).order_by("-requested_at", "-pk"):
        grants.setdefault(grant.dataset_id, grant)
    return grants


def consented_datasets(
    *, applicant: Person | Organization, department: Department, codes: Iterable[str]
) -> set[str]:
    """Codes of the datasets the applicant lets the department read now (授权用数)."""
    return set(
        Consent.objects.filter(
            **_holder(applicant),
            grantee_department=department,
            dataset_code__in=list(codes),
            valid_until__gte=timezone.localdate(),
            withdrawn_at__isnull=True,
        ).values_list("dataset_code", flat=True)
    )


def _datasets_with_rows(datasets: Iterable[Dataset], subject: str) -> set[int]:
    """Local datasets holding a row about the subject (existence only, see the module doc).
    A remote provider is asked only at submission."""
    local = [d for d in datasets if d.source == Dataset.Source.LOCAL]
    if not local:
        return set()
    return set(
        Record.objects.filter(dataset__in=local, subject=subject)
        .values_list("dataset_id", flat=True)
        .distinct()
    )


def materials_resolve(
    *, item: ServiceItem, applicant: Person | Organization, department: Department
) -> list[MaterialResolution]:
    """For each material of the item, in order: the applicant's valid license of a type
    that satisfies it; else a dataset it names that the department may read about the
    applicant (its own data, or shared under an approved grant for handling services, with
    the applicant's consent where the data is conditional — `needs_consent` when not given
    yet); else an upload."""
    materials = list(item.materials.all())
    # Once for all materials, unless the caller prefetched them (`item_get`, `bundle_items`).
    prefetch_related_objects(materials, "license_types")
    types = {t for m in materials for t in m.license_types.all()}
    held = licenses_valid(applicant=applicant, license_types=types)
    codes = {code for m in materials for code in m.dataset_codes}
    datasets = {
        d.code: d
        for d in Dataset.objects.filter(code__in=codes).select_related("provider")
        if dataset_fits(d, applicant)
    }
    grants = grants_for_reading(department=department, datasets=datasets.values())
    _kind, subject = applicant_code(applicant)
    with_rows = _datasets_with_rows(datasets.values(), subject)
    conditional = [d.code for d in datasets.values() if d.sharing_class == SharingClass.CONDITIONAL]
    consented = (
        consented_datasets(applicant=applicant, department=department, codes=conditional)
        if conditional
        else set()
    )

    resolutions = []
    for material in materials:
        licenses = [held[t.pk] for t in material.license_types.all() if t.pk in held]
        if licenses:
            newest = max(licenses, key=lambda lic: (lic.issued_at, lic.pk))
            resolutions.append(MaterialResolution(item, material, LICENSE, license=newest))
            continue
        found: MaterialResolution | None = None
        for code in material.dataset_codes:
            dataset = datasets.get(code)
            if dataset is None:
                continue
            has_rows = dataset.source == Dataset.Source.REMOTE or dataset.pk in with_rows
            if dataset.provider_id == department.pk:
                # Its own base database: no grant needed (none can be granted) and no
                # consent; a remote one of its own is its own system, not ours to query.
                if dataset.source == Dataset.Source.LOCAL and has_rows:
                    found = MaterialResolution(item, material, DATASET, dataset=dataset)
                    break
                continue
            grant = grants.get(dataset.pk)
            if grant is None or not has_rows:
                continue
            needs_consent = (
                dataset.sharing_class == SharingClass.CONDITIONAL and code not in consented
            )
            candidate = MaterialResolution(
                item, material, DATASET, dataset=dataset, grant=grant, needs_consent=needs_consent
            )
            if not needs_consent:
                found = candidate
                break
            found = found or candidate  # keep looking for data that needs no consent
        resolutions.append(found or MaterialResolution(item, material, UPLOAD))
    return resolutions


# --- reading at submission ------------------------------------------------------------------


@dataclass(frozen=True)
class DataRead:
    """One audited read of the applicant's rows of a dataset for a case."""

    dataset: Dataset
    fields: tuple[str, ...]
    rows: list[dict[str, Any]]
    request_id: str
    audit_seq: int
    grant_id: int | None  # None: the department's own data

    def reference(self) -> dict[str, Any]:
        """How a case's materials and rule report cite this read."""
        return {
            "dataset": self.dataset.code,
            "grant": self.grant_id,
            "request_id": self.request_id,
            "audit_seq": self.audit_seq,
        }


@dataclass
class CaseDataReader:
    """The handling department reading one applicant's data for one case, each read
    audited under the caller "case:<number>" with the item's legal basis. A dataset read
    once for the case is not read again when later fields are among those already read."""

    case: Case
    _reads: dict[str, DataRead] = field(default_factory=dict)

    @property
    def caller(self) -> Caller:
        return Caller(self.case.department, f"case:{self.case.number}", READS_PER_MINUTE)

    @property
    def legal_basis(self) -> str:
        return " ".join(self.case.item.legal_basis.split())[:LEGAL_BASIS_MAX]

    def datasets(self, codes: Iterable[str]) -> dict[str, Dataset]:
        """The datasets of these codes that exist (code -> dataset), those read for the
        case already without asking the database again."""
        wanted = set(codes)
        found = {c: r.dataset for c, r in self._reads.items() if c in wanted}
        if missing := wanted - found.keys():
            found |= {
                d.code: d
                for d in Dataset.objects.filter(code__in=missing).select_related("provider")
            }
        return found

    def read(self, dataset: Dataset, fields: Sequence[str]) -> DataRead:
        earlier = self._reads.get(dataset.code)
        if earlier is not None and set(fields) <= set(earlier.fields):
            return earlier
        if dataset.provider_id == self.case.department_id:
            done = self._own_read(dataset, fields)
        else:
            done = self._shared_read(dataset, fields)
        self._reads[dataset.code] = done
        return done

    def _shared_read(self, dataset: Dataset, fields: Sequence[str]) -> DataRead:
        _kind, subject = self.case.applicant_subject
        answer = data_query(
            caller=self.caller,
            dataset_code=dataset.code,
            subject=subject,
            fields=list(fields),
            purpose=PURPOSE,
            legal_basis=self.legal_basis,
        )
        # The exchange picks the grant that covers the call; its audit entry names it.
        grant_id = (
            AuditEntry.objects.filter(seq=answer["audit_seq"])
            .values_list("object_id", flat=True)
            .first()
        )
        return DataRead(
            dataset=dataset,
            fields=tuple(fields),
            rows=answer["rows"],
            request_id=answer["request_id"],
            audit_seq=answer["audit_seq"],
            grant_id=int(grant_id) if grant_id else None,
        )

    def _own_read(self, dataset: Dataset, fields: Sequence[str]) -> DataRead:
        """The department's own base database: no grant applies, but the read is audited
        as the exchange audits a query, so the person sees it in 数据使用记录."""
        subject = self.case.applicant_subject
        rows = [
            {key: data.get(key) for key in fields}
            for data in Record.objects.filter(dataset=dataset, subject=subject[1]).values_list(
                "data", flat=True
            )
        ]
        request_id = uuid.uuid4().hex
        entry = audit_record(
            action="exchange.query",
            actor=self.caller.label,
            target=dataset,
            subject=subject,
            purpose=PURPOSE,
            after={
                "request_id": request_id,
                "consumer": self.case.department.code,
                "dataset": dataset.code,
                "fields": list(fields),
                "legal_basis": self.legal_basis,
                "rows": len(rows),
                "own_data": True,
            },
        )
        return DataRead(
            dataset=dataset,
            fields=tuple(fields),
            rows=rows,
            request_id=request_id,
            audit_seq=entry.seq,
            grant_id=None,
        )


def material_fetch(resolution: MaterialResolution, reader: CaseDataReader) -> dict[str, Any]:
    """The material's `Case.materials` entry with what was fetched: the license used, or
    the rows read (the fields granted, or all of the department's own) and the read's
    request id and audit sequence number (the caller refuses an empty answer)."""
    entry = resolution.record()
    if resolution.source != DATASET or resolution.dataset is None:
        return entry
    fields = resolution.grant.fields if resolution.grant else resolution.dataset.field_keys
    done = reader.read(resolution.dataset, fields)
    return entry | done.reference() | {"rows": done.rows}
