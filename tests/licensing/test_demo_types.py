"""Every license type of the demo city makes a valid surface and an offline QR that fits
QR version 22 at error correction Q, with a long holder name and the largest status index."""

import datetime as dt

import jsonschema
import pytest
import yaml
from django.utils import timezone

from tongban.licensing import offline_qr
from tongban.licensing.signers import signer_generate
from tongban.portal.demo import CATALOG_FILE

LICENSE_TYPES = yaml.safe_load(CATALOG_FILE.read_text(encoding="utf-8"))["license_types"]
PLACEHOLDERS = {
    "holder_name": "欧阳张三丰",
    "district": "历下区",
    "date": "2024-05-06",
    "year": "2024",
}


def example(row: dict) -> dict:
    return {
        key: value.format(**PLACEHOLDERS) if isinstance(value, str) else value
        for key, value in row["example"].items()
    }


@pytest.mark.parametrize("row", LICENSE_TYPES, ids=[r["code"] for r in LICENSE_TYPES])
def test_example_is_valid_and_its_qr_fits_version_22(row):
    surface = example(row)
    jsonschema.Draft202012Validator(
        row["surface_schema"], format_checker=jsonschema.FormatChecker()
    ).validate(surface)
    shown = {k: surface[k] for k in [*row["qr_fields"], *row["digest_fields"]] if k in surface}
    now = timezone.now().replace(microsecond=0)
    identifier = "1.2.156.3005.2.11100000000013338W001.11370100004187757G.3671364358430890.001.3"
    claims = offline_qr.offline_claims_build(
        issuer="11370100004187757G",
        issued_at=now,
        license_id=identifier,
        type_code=row["standard_code"],
        holder_name="欧阳张三丰",
        holder_code="370102199001011234",
        fields=offline_qr.offline_fields(shown, digest=frozenset(row["digest_fields"])),
        valid_from=dt.date(2024, 1, 1),
        valid_until=dt.date(2030, 1, 1),
        status=offline_qr.StatusReference(uri="/api/v1/licenses/status-lists/1", index=131_071),
        expires_at=now + dt.timedelta(hours=24),
    )
    for algorithm in ("ES256", "EdDSA", "SM2SM3"):
        text = offline_qr.offline_qr_encode(claims=claims, signer=signer_generate(algorithm))
        qr = offline_qr.offline_qr_image(text)
        assert qr.version <= 22 and qr.mode == "alphanumeric" and qr.error == "Q"
