"""The verifier's command: offline with exported files, or against this node."""

import base64
import io

import pytest
from django.core.management import CommandError, call_command

from tongban.licensing.keys import platform_signer
from tongban.licensing.selectors import license_offline_qr
from tongban.licensing.services import license_status_set

from .factories import issue_residence_permit, make_office

pytestmark = pytest.mark.django_db


def run(*args: str) -> str:
    out = io.StringIO()
    call_command("license", *args, stdout=out, stderr=io.StringIO())
    return out.getvalue()


def test_offline_verification_with_exported_files(tmp_path):
    # Given a verifier who exported the trust list and status lists while online
    office = make_office()
    license = issue_residence_permit(office)
    text = license_offline_qr(license=license)
    run("export", str(tmp_path))
    key = base64.urlsafe_b64encode(platform_signer().public().public_bytes())
    offline = [
        "--trust-list",
        str(tmp_path / "trust-list.json"),
        "--status-list",
        str(tmp_path / f"status-list-{license.status_list_id}.txt"),
        "--platform-key",
        key.decode().rstrip("="),
    ]
    # When it verifies a shown code with those files only
    assert "VALID" in run("verify", text, *offline)
    # Then a revocation reaches it with the next export, not before
    license_status_set(license=license, status="revoked", reason="注销", actor=office.staff)
    assert "VALID" in run("verify", text, *offline)
    run("export", str(tmp_path))
    with pytest.raises(CommandError, match="revoked"):
        run("verify", text, *offline)


def test_a_forged_trust_list_is_refused(tmp_path):
    office = make_office()
    text = license_offline_qr(license=issue_residence_permit(office))
    run("export", str(tmp_path))
    path = tmp_path / "trust-list.json"
    path.write_text(
        path.read_text(encoding="utf-8").replace("演示市公安局", "冒充局"), encoding="utf-8"
    )
    with pytest.raises(CommandError, match="trust_list_invalid"):
        run("verify", text, "--trust-list", str(path))


def test_missing_status_list_is_not_valid(tmp_path):
    office = make_office()
    text = license_offline_qr(license=issue_residence_permit(office))
    run("export", str(tmp_path))
    with pytest.raises(CommandError, match="status_unknown"):
        run("verify", text, "--trust-list", str(tmp_path / "trust-list.json"))


def test_online_verification_names_the_reason():
    office = make_office()
    license = issue_residence_permit(office)
    text = license_offline_qr(license=license)
    assert "居住证" in run("verify", text)
    with pytest.raises(CommandError, match="qr_format"):
        run("verify", "TB1:garbage")


def test_verify_a_photo_of_the_code(tmp_path):
    from tongban.licensing.offline_qr import offline_qr_image

    office = make_office()
    text = license_offline_qr(license=issue_residence_permit(office))
    photo = tmp_path / "code.png"
    offline_qr_image(text).save(str(photo), scale=4)
    assert "VALID" in run("verify", str(photo))
    with pytest.raises(CommandError, match="no such image"):
        run("verify", str(tmp_path / "missing.png"))


def test_rotate_seal_command():
    office = make_office()
    out = run("rotate-seal", office.department.code)
    office.seal.refresh_from_db()
    assert office.seal.retired_at is not None and office.seal.key_id in out
    with pytest.raises(CommandError, match="no current seal"):
        run("rotate-seal", "nowhere")
