"""电子证明: proofs issued on demand from the issuing department's own data, signed by its
system account under an automated seal grant, audited, and refused without changing
anything when the data is missing or says no."""

import datetime as dt

import pytest
import yaml
from django.test import Client
from django.utils import timezone
from ninja import NinjaAPI
from ninja.testing import TestClient

from tests.people.factories import DEFAULT_PASSWORD, make_person, make_user
from tongban.audit.models import AuditEntry
from tongban.catalog.models import LicenseType
from tongban.catalog.services import catalog_load
from tongban.config.api import tongban_error
from tongban.core.errors import TongbanError
from tongban.exchange import proof_api, proofs
from tongban.exchange.models import Dataset
from tongban.licensing import selectors as license_selectors
from tongban.licensing.models import License, SealGrant
from tongban.licensing.services import seal_create, seal_grant_create, seal_rotate
from tongban.people.models import Department, Person, User
from tongban.portal.demo import CATALOG_FILE

from .factories import load_datasets, put_rows

pytestmark = pytest.mark.django_db

PROOF_TYPES = ("LT-RESIDENCE-PROOF", "LT-NO-CRIMINAL-RECORD", "LT-MARRIAGE-RECORD")


@pytest.fixture
def city() -> dict[str, Dataset]:
    """The three datasets and proof types of the demo catalog, a seal per issuing
    department, and the automated signers set up."""
    datasets = load_datasets("population", "criminal_record", "marriage")
    document = yaml.safe_load(CATALOG_FILE.read_text(encoding="utf-8"))
    rows = [row for row in document["license_types"] if row["code"] in PROOF_TYPES]
    catalog_load(data={"license_types": rows}, actor="test")
    for code in ("public_security", "civil_affairs"):
        seal_create(department=Department.objects.get(code=code), name="电子证明专用章", actor="t")
    proofs.proof_signers_setup(actor="test")
    return datasets


@pytest.fixture
def citizen() -> User:
    return make_user(role="citizen", person=make_person(name="王小明"))


def population_row(person: Person, **changes: object) -> dict[str, object]:
    return {
        "resident_id": person.resident_id,
        "name": person.name,
        "sex": "男",
        "birth_date": person.birth_date.isoformat(),
        "ethnicity": "汉族",
        "division_code": "370102",
        "address": "演示市历下区龙奥北路1号6号楼1单元202室",
        "registered_since": "2021-03-01",
        "alive": True,
    } | changes


def code_of(call) -> str:
    with pytest.raises(TongbanError) as caught:
        call()
    return caught.value.code


def counts() -> tuple[int, int, int]:
    return License.objects.count(), AuditEntry.objects.count(), User.objects.count()


def assert_verifies_and_is_in_wallet(license: License, user: User) -> None:
    text = license_selectors.license_offline_qr(license=license)
    result = license_selectors.license_verify(text=text)
    assert result.valid, result.reason
    assert license_selectors.licenses_for_user(user=user).filter(pk=license.pk).exists()


# --- the three proofs --------------------------------------------------------------------


def test_residence_proof_is_built_from_the_population_register(city, citizen):
    put_rows(city["population"], population_row(citizen.person))

    license = proofs.proof_issue(
        license_type_code="LT-RESIDENCE-PROOF", purpose="办理子女入学", actor=citizen
    )

    assert license.surface == {
        "residence_address": "演示市历下区龙奥北路1号6号楼1单元202室",
        "resided_since": "2021-03-01",
        "attested_matter": (
            "经核查人口基础信息，王小明自2021年3月1日起登记居住于上述地址，特此证明。"
        ),
        "purpose": "办理子女入学",
        "issuing_unit": "public_security 局",
    }
    assert license.holder_person == citizen.person
    assert license.issuer.code == "public_security"
    assert license.grant.automated and license.grant.user.username == "public_security-proof-signer"
    assert license.valid_until is None
    assert_verifies_and_is_in_wallet(license, citizen)


def test_no_criminal_record_proof_says_so_up_to_the_checked_date(city, citizen):
    put_rows(
        city["criminal_record"],
        {
            "resident_id": citizen.person.resident_id,
            "has_record": False,
            "checked_until": "2026-11-30",
        },
    )

    license = proofs.proof_issue(
        license_type_code="LT-NO-CRIMINAL-RECORD", purpose="应聘", actor=citizen
    )

    assert license.surface == {
        "query_result": "未发现有犯罪记录",
        "checked_until": "2026-11-30",
        "purpose": "应聘",
        "issuing_unit": "public_security 局",
    }
    assert_verifies_and_is_in_wallet(license, citizen)


def test_marriage_record_proof_lists_every_registration_oldest_first(city, citizen):
    rid = citizen.person.resident_id
    put_rows(
        city["marriage"],
        {
            "resident_id": rid,
            "event": "离婚登记",
            "registered_on": "2023-05-06",
            "spouse_name": "李梅",
            "registry": "演示市历下区民政局婚姻登记处",
        },
        {
            "resident_id": rid,
            "event": "结婚",
            "registered_on": "2019-10-01",
            "spouse_name": "李梅",
            "registry": "演示市历下区民政局婚姻登记处",
        },
    )

    license = proofs.proof_issue(
        license_type_code="LT-MARRIAGE-RECORD", purpose="办理不动产登记", actor=citizen
    )

    assert license.surface == {
        "checked_on": timezone.localdate().isoformat(),
        "record_count": 2,
        "latest_registration": "离婚登记",
        "records": (
            "1. 结婚登记，登记日期2019-10-01，对方姓名李梅，登记机关演示市历下区民政局婚姻登记处；"
            "2. 离婚登记，登记日期2023-05-06，对方姓名李梅，登记机关演示市历下区民政局婚姻登记处"
        ),
        "purpose": "办理不动产登记",
    }
    assert license.issuer.code == "civil_affairs"
    assert_verifies_and_is_in_wallet(license, citizen)


@pytest.mark.parametrize(
    ("row", "code"),
    [
        ({"event": "复婚?", "registered_on": "2020-01-01"}, "proof_counter_required"),
        ({"event": "结婚", "registered_on": "不详"}, "proof_data_missing"),
    ],
)
def test_a_marriage_row_the_proof_cannot_state_issues_nothing(city, citizen, row, code):
    put_rows(city["marriage"], {"resident_id": citizen.person.resident_id, **row})
    before = counts()

    refused = code_of(
        lambda: proofs.proof_issue(
            license_type_code="LT-MARRIAGE-RECORD", purpose="出国留学", actor=citizen
        )
    )

    assert refused == code
    assert counts() == before


def test_marriage_record_proof_with_no_registration_says_none(city, citizen):
    other = make_person(name="赵六")
    put_rows(
        city["marriage"],
        {"resident_id": other.resident_id, "event": "结婚登记", "registered_on": "2020-01-01"},
    )

    license = proofs.proof_issue(
        license_type_code="LT-MARRIAGE-RECORD", purpose="出国留学", actor=citizen
    )

    assert license.surface["record_count"] == 0
    assert license.surface["latest_registration"] == "无婚姻登记记录"
    assert license.surface["records"] == "无婚姻登记记录"
    assert_verifies_and_is_in_wallet(license, citizen)


# --- refusals change nothing -------------------------------------------------------------


def test_no_population_row_is_refused_and_nothing_is_issued(city, citizen):
    before = counts()

    code = code_of(
        lambda: proofs.proof_issue(
            license_type_code="LT-RESIDENCE-PROOF", purpose="办理子女入学", actor=citizen
        )
    )

    assert code == "proof_data_missing"
    assert counts() == before


def test_an_empty_marriage_register_certifies_nobody(city, citizen):
    before = counts()

    code = code_of(
        lambda: proofs.proof_issue(
            license_type_code="LT-MARRIAGE-RECORD", purpose="出国留学", actor=citizen
        )
    )

    assert code == "proof_data_missing"
    assert counts() == before


def test_a_criminal_record_sends_the_person_to_the_counter(city, citizen):
    put_rows(
        city["criminal_record"],
        {
            "resident_id": citizen.person.resident_id,
            "has_record": True,
            "checked_until": "2026-11-30",
        },
    )
    before = counts()

    code = code_of(
        lambda: proofs.proof_issue(
            license_type_code="LT-NO-CRIMINAL-RECORD", purpose="应聘", actor=citizen
        )
    )

    assert code == "proof_counter_required"
    assert counts() == before


@pytest.mark.parametrize(
    "row",
    [
        {"has_record": None, "checked_until": "2026-11-30"},
        {"has_record": False, "checked_until": ""},
    ],
)
def test_an_unclear_criminal_record_row_issues_nothing(city, citizen, row):
    put_rows(city["criminal_record"], {"resident_id": citizen.person.resident_id, **row})
    before = counts()

    code = code_of(
        lambda: proofs.proof_issue(
            license_type_code="LT-NO-CRIMINAL-RECORD", purpose="应聘", actor=citizen
        )
    )

    assert code == "proof_data_missing"
    assert counts() == before


def test_the_proof_is_always_about_the_citizen_asking(city, citizen):
    other = make_person(name="赵六")
    put_rows(city["population"], population_row(other, address="演示市市中区经七路1号"))

    code = code_of(
        lambda: proofs.proof_issue(
            license_type_code="LT-RESIDENCE-PROOF", purpose="办理子女入学", actor=citizen
        )
    )
    assert code == "proof_data_missing"

    put_rows(city["population"], population_row(citizen.person))
    license = proofs.proof_issue(
        license_type_code="LT-RESIDENCE-PROOF", purpose="办理子女入学", actor=citizen
    )
    assert license.holder_person == citizen.person
    assert license.surface["residence_address"] == "演示市历下区龙奥北路1号6号楼1单元202室"
    assert not License.objects.filter(holder_person=other).exists()


@pytest.mark.parametrize("role", ["staff", "org_agent", "data_admin", "sys_admin"])
def test_only_citizens_get_proofs(city, role):
    actor = make_user(role=role)
    if actor.person is not None:
        put_rows(city["population"], population_row(actor.person))
    before = counts()

    code = code_of(
        lambda: proofs.proof_issue(
            license_type_code="LT-RESIDENCE-PROOF", purpose="办理子女入学", actor=actor
        )
    )

    assert code == "proof_citizens_only"
    assert counts() == before


@pytest.mark.parametrize("purpose", ["", "   ", "用" * 41])
def test_the_purpose_is_required_and_short(city, citizen, purpose):
    put_rows(city["population"], population_row(citizen.person))

    code = code_of(
        lambda: proofs.proof_issue(
            license_type_code="LT-RESIDENCE-PROOF", purpose=purpose, actor=citizen
        )
    )

    assert code == "proof_purpose_invalid"


@pytest.mark.parametrize("type_code", ["LT-DEATH-PROOF", "LT-NOPE", ""])
def test_only_on_demand_proof_types_are_issued(city, citizen, type_code):
    assert (
        code_of(
            lambda: proofs.proof_issue(license_type_code=type_code, purpose="应聘", actor=citizen)
        )
        == "proof_type_unknown"
    )


# --- audit --------------------------------------------------------------------------------


def test_the_read_and_the_signature_are_audited(city, citizen):
    put_rows(city["population"], population_row(citizen.person))

    license = proofs.proof_issue(
        license_type_code="LT-RESIDENCE-PROOF", purpose="办理子女入学", actor=citizen
    )

    read = AuditEntry.objects.get(action="exchange.proof_read")
    assert read.actor == f"user:{citizen.pk}:{citizen.username}"
    assert (read.subject_type, read.subject_id) == ("person", citizen.person.resident_id)
    assert read.purpose == "办理子女入学"
    assert read.object_type == "exchange.dataset" and read.object_id == str(city["population"].pk)
    assert read.after == {
        "consumer": "public_security",
        "dataset": "population",
        "fields": ["address", "registered_since"],
        "rows": 1,
        "legal_basis": city["population"].legal_basis,
        "license_type": "LT-RESIDENCE-PROOF",
    }
    signed = AuditEntry.objects.get(action="license.issue", object_id=str(license.pk))
    assert signed.seq == read.seq + 1
    assert signed.actor == f"user:{license.grant.user.pk}:public_security-proof-signer"
    assert signed.after["seal"] == license.seal.key_id
    assert signed.after["grant"] == license.grant.pk


# --- repeats and limits --------------------------------------------------------------------


def test_the_same_request_on_the_same_day_returns_the_same_proof(city, citizen):
    put_rows(city["population"], population_row(citizen.person))
    first = proofs.proof_issue(
        license_type_code="LT-RESIDENCE-PROOF", purpose="办理子女入学", actor=citizen
    )
    before = counts()

    again = proofs.proof_issue(
        license_type_code="LT-RESIDENCE-PROOF", purpose=" 办理子女入学 ", actor=citizen
    )

    assert again.pk == first.pk
    assert counts() == before
    other_purpose = proofs.proof_issue(
        license_type_code="LT-RESIDENCE-PROOF", purpose="申请公租房", actor=citizen
    )
    assert other_purpose.pk != first.pk


def test_yesterdays_proof_is_not_reused(city, citizen):
    put_rows(city["population"], population_row(citizen.person))
    first = proofs.proof_issue(
        license_type_code="LT-RESIDENCE-PROOF", purpose="办理子女入学", actor=citizen
    )
    License.objects.filter(pk=first.pk).update(issued_at=first.issued_at - dt.timedelta(days=1))

    again = proofs.proof_issue(
        license_type_code="LT-RESIDENCE-PROOF", purpose="办理子女入学", actor=citizen
    )

    assert again.pk != first.pk


def test_a_person_gets_a_limited_number_of_new_proofs_a_day(city, citizen, monkeypatch):
    monkeypatch.setattr(proofs, "PROOFS_PER_DAY", 2)
    put_rows(city["population"], population_row(citizen.person))
    for purpose in ("用途一", "用途二"):
        proofs.proof_issue(license_type_code="LT-RESIDENCE-PROOF", purpose=purpose, actor=citizen)
    before = counts()

    code = code_of(
        lambda: proofs.proof_issue(
            license_type_code="LT-RESIDENCE-PROOF", purpose="用途三", actor=citizen
        )
    )

    assert code == "proof_daily_limit"
    assert counts() == before
    repeat = proofs.proof_issue(
        license_type_code="LT-RESIDENCE-PROOF", purpose="用途一", actor=citizen
    )
    assert repeat.surface["purpose"] == "用途一"


# --- the automated signers -----------------------------------------------------------------


def test_signers_are_system_accounts_nobody_can_log_in_to(city):
    grants = SealGrant.objects.filter(automated=True).select_related("user", "seal")
    assert {g.user.username for g in grants} == {
        "public_security-proof-signer",
        "civil_affairs-proof-signer",
    }
    for grant in grants:
        assert grant.user.role == "staff" and grant.user.department == grant.seal.department
        assert not grant.user.is_active and not grant.user.has_usable_password()
        assert not Client().login(username=grant.user.username, password=DEFAULT_PASSWORD)
    police = grants.get(user__username="public_security-proof-signer")
    assert {t.code for t in police.license_types.all()} == {
        "LT-RESIDENCE-PROOF",
        "LT-NO-CRIMINAL-RECORD",
    }
    created = AuditEntry.objects.filter(action="proof.signer_create")
    assert created.count() == 2
    assert AuditEntry.objects.filter(action="seal.grant", after__automated=True).count() == 2


def test_signer_setup_is_idempotent(city):
    grants = set(SealGrant.objects.filter(automated=True).values_list("pk", flat=True))
    before = counts()

    again = proofs.proof_signers_setup(actor="test")

    assert {g.pk for g in again} == grants
    assert counts() == before


def test_signer_setup_is_for_administrators(city):
    for role in ("staff", "citizen"):
        actor = make_user(role=role)
        assert code_of(lambda a=actor: proofs.proof_signers_setup(actor=a)) == "permission_denied"
    admin = make_user(role="data_admin")
    assert len(proofs.proof_signers_setup(actor=admin)) == 2


def test_signer_setup_refuses_a_login_account_of_the_same_name(city):
    SealGrant.objects.filter(automated=True).delete()
    User.objects.filter(username="civil_affairs-proof-signer").update(is_active=True)

    assert code_of(lambda: proofs.proof_signers_setup(actor="test")) == "proof_signer_conflict"


def test_an_automated_grant_needs_a_system_account(city):
    department = Department.objects.get(code="civil_affairs")
    clerk = make_user(role="staff", department=department)

    code = code_of(
        lambda: seal_grant_create(
            seal=department.seals.get(),
            user=clerk,
            license_types=[LicenseType.objects.get(code="LT-MARRIAGE-RECORD")],
            valid_until=timezone.now() + dt.timedelta(days=30),
            automated=True,
            actor="test",
        )
    )

    assert code == "automated_grant_needs_system_account"


def test_without_a_signer_proofs_are_not_offered_nor_issued(city, citizen):
    put_rows(city["population"], population_row(citizen.person))
    SealGrant.objects.filter(user__username="public_security-proof-signer").update(
        revoked_at=timezone.now()
    )

    assert [o.license_type.code for o in proofs.proofs_offered()] == ["LT-MARRIAGE-RECORD"]
    code = code_of(
        lambda: proofs.proof_issue(
            license_type_code="LT-RESIDENCE-PROOF", purpose="办理子女入学", actor=citizen
        )
    )
    assert code == "proof_unavailable"


def test_a_signer_that_could_log_in_again_signs_nothing(city, citizen):
    put_rows(city["population"], population_row(citizen.person))
    User.objects.filter(username="public_security-proof-signer").update(is_active=True)

    code = code_of(
        lambda: proofs.proof_issue(
            license_type_code="LT-RESIDENCE-PROOF", purpose="办理子女入学", actor=citizen
        )
    )

    assert code == "proof_unavailable"


def test_after_a_seal_rotation_proofs_are_signed_with_the_new_seal(city, citizen):
    put_rows(city["population"], population_row(citizen.person))
    old = Department.objects.get(code="public_security").seals.get()
    new = seal_rotate(seal=old, actor="test")

    license = proofs.proof_issue(
        license_type_code="LT-RESIDENCE-PROOF", purpose="办理子女入学", actor=citizen
    )

    assert license.seal == new and license.grant.automated
    assert_verifies_and_is_in_wallet(license, citizen)


# --- pages ---------------------------------------------------------------------------------


def test_the_page_lists_the_proofs_and_the_data_they_use(client, city, citizen):
    client.force_login(citizen)

    page = client.get("/proofs/").content.decode()

    for name in ("居住证明", "无犯罪记录证明", "婚姻登记记录证明", "人口基础信息", "户籍地址"):
        assert name in page
    assert "public_security 局" in page and "civil_affairs 局" in page
    assert page.count('name="csrfmiddlewaretoken"') >= 3
    assert "<script>" not in page and " style=" not in page
    assert "/proofs/" in client.get("/wallet/").content.decode()


def test_the_page_is_for_citizens(client, city):
    assert client.get("/proofs/").status_code == 302
    for role in ("staff", "org_agent"):
        client.force_login(make_user(role=role))
        assert client.get("/proofs/").status_code == 403
        assert client.post("/proofs/", {"license_type": "LT-RESIDENCE-PROOF"}).status_code == 403
    assert not License.objects.exists()


def test_posting_issues_and_redirects_to_the_proof_in_the_wallet(client, city, citizen):
    put_rows(city["population"], population_row(citizen.person))
    client.force_login(citizen)
    form = {"license_type": "LT-RESIDENCE-PROOF", "purpose": "办理子女入学"}

    response = client.post("/proofs/", form)

    license = License.objects.get()
    assert response.status_code == 302 and response["Location"] == f"/wallet/{license.pk}/"
    assert (
        "演示市历下区龙奥北路1号6号楼1单元202室"
        in client.get(response["Location"]).content.decode()
    )
    again = client.post("/proofs/", form)
    assert again["Location"] == f"/wallet/{license.pk}/" and License.objects.count() == 1


@pytest.mark.parametrize(
    ("form", "status", "code"),
    [
        (
            {"license_type": "LT-RESIDENCE-PROOF", "purpose": "办理子女入学"},
            404,
            "proof_data_missing",
        ),
        (
            {"license_type": "LT-NO-CRIMINAL-RECORD", "purpose": "应聘"},
            409,
            "proof_counter_required",
        ),
        ({"license_type": "LT-DEATH-PROOF", "purpose": "应聘"}, 404, "proof_type_unknown"),
    ],
)
def test_refusals_are_shown_on_the_page(client, city, citizen, form, status, code):
    put_rows(
        city["criminal_record"],
        {
            "resident_id": citizen.person.resident_id,
            "has_record": True,
            "checked_until": "2026-11-30",
        },
    )
    client.force_login(citizen)

    response = client.post("/proofs/", form)

    assert response.status_code == status
    assert f"({code})" in response.content.decode()
    assert 'role="alert"' in response.content.decode()
    assert not License.objects.exists()


def test_a_too_long_purpose_is_shown_on_its_field(client, city, citizen):
    client.force_login(citizen)

    response = client.post("/proofs/", {"license_type": "LT-RESIDENCE-PROOF", "purpose": "用" * 41})

    assert response.status_code == 422
    assert response.context["cards"][0][1].errors["purpose"]
    assert not License.objects.exists()


def test_posting_needs_the_csrf_token(city, citizen):
    client = Client(enforce_csrf_checks=True)
    client.force_login(citizen)

    response = client.post("/proofs/", {"license_type": "LT-RESIDENCE-PROOF", "purpose": "应聘"})

    assert response.status_code == 403
    assert not License.objects.exists()


# --- API -----------------------------------------------------------------------------------


@pytest.fixture
def api_client() -> TestClient:
    """The proofs router on its own API with the platform's error handler, as the project
    API mounts it (at /api/v1/proofs/)."""
    api = NinjaAPI(urls_namespace="proofs-test")
    api.add_exception_handler(TongbanError, tongban_error)
    api.add_router("/proofs/", proof_api.router)
    return TestClient(api)


def test_api_lists_offers_and_issues(api_client, city, citizen):
    put_rows(city["population"], population_row(citizen.person))

    listed = api_client.get("/proofs/", user=citizen)
    issued = api_client.post(
        "/proofs/", json={"license_type": "LT-RESIDENCE-PROOF", "purpose": "应聘"}, user=citizen
    )

    assert listed.status_code == 200
    assert listed.json()[0] == {
        "license_type": "LT-RESIDENCE-PROOF",
        "name": "居住证明",
        "name_en": "Proof of residence",
        "issuer": "public_security 局",
        "dataset": "population",
        "fields": ["address", "registered_since"],
    }
    assert issued.status_code == 200
    license = License.objects.get()
    assert issued.json()["id"] == license.pk and issued.json()["type_code"] == "LT-RESIDENCE-PROOF"


def test_api_refusals_carry_their_code(api_client, city, citizen):
    refused = api_client.post(
        "/proofs/", json={"license_type": "LT-RESIDENCE-PROOF", "purpose": "应聘"}, user=citizen
    )
    staff = api_client.get("/proofs/", user=make_user(role="staff"))

    assert (refused.status_code, refused.json()["code"]) == (404, "proof_data_missing")
    assert (staff.status_code, staff.json()["code"]) == (403, "proof_citizens_only")
    assert api_client.get("/proofs/").status_code == 401
    assert not License.objects.exists()
