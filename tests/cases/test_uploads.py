"""Uploaded materials: typed by their content, limited in size, hashed, stored under a
random name outside the web root, and nothing left behind when refused."""

import hashlib
import io
import stat
from pathlib import Path

import pytest
from django.conf import settings
from django.core.files.uploadedfile import SimpleUploadedFile

from tests.cases.apply_factories import PDF, upload_dir  # noqa: F401  (autouse fixture)
from tests.people.factories import make_user
from tongban.audit.models import AuditEntry
from tongban.cases import uploads
from tongban.cases.models import Upload
from tongban.core.errors import TongbanError

pytestmark = pytest.mark.django_db

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 40
JPEG = b"\xff\xd8\xff\xe0" + b"\x00" * 40


@pytest.fixture
def user():
    return make_user(role="citizen")


def store(user, content: bytes, name: str = "scan.pdf"):
    return uploads.upload_store(
        file=io.BytesIO(content), name=name, material_key="residence_permit", actor=user
    )


def refused(call) -> tuple[str, int]:
    with pytest.raises(TongbanError) as caught:
        call()
    return caught.value.code, caught.value.status


def files_in(directory) -> list[str]:
    directory = Path(directory)
    return sorted(p.name for p in directory.iterdir()) if directory.exists() else []


@pytest.mark.parametrize(
    ("content", "content_type"),
    [(PDF, "application/pdf"), (PNG, "image/png"), (JPEG, "image/jpeg")],
)
def test_a_file_is_typed_by_its_content_and_stored_outside_the_web_root(
    user, content, content_type
):
    # When a file is uploaded under a misleading name
    upload = store(user, content, name="../../etc/证件.exe")

    # Then its type comes from its bytes, its name is only shown, and it is stored under a
    # random name in the upload directory, readable by the server alone
    assert (upload.content_type, upload.size, upload.original_name) == (
        content_type,
        len(content),
        "证件.exe",
    )
    assert upload.sha256 == hashlib.sha256(content).hexdigest()
    path = uploads.upload_path(upload)
    assert (
        path.parent == settings.UPLOAD_DIR and len(path.name) == 32 and path.read_bytes() == content
    )
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    for web_root in (settings.STATIC_ROOT, settings.MEDIA_ROOT):
        assert web_root not in path.parents
    assert files_in(settings.UPLOAD_DIR) == [path.name]
    with uploads.upload_open(upload) as handle:
        assert handle.read() == content
    entry = AuditEntry.objects.get(action="upload.create")
    assert entry.after == {
        "material": "residence_permit",
        "content_type": content_type,
        "size": len(content),
        "sha256": upload.sha256,
    }


def test_too_large_a_file_is_refused_and_nothing_is_written(user, settings):
    settings.UPLOAD_MAX_BYTES = 100
    entries = AuditEntry.objects.count()

    # a stream longer than the limit is cut off while it is read
    assert refused(lambda: store(user, PDF + b"x" * 200)) == ("upload_too_large", 413)
    # and a file whose declared size is too large is refused before reading
    big = SimpleUploadedFile("big.pdf", PDF + b"x" * 200, content_type="application/pdf")
    assert refused(
        lambda: uploads.upload_store(file=big, name="big.pdf", material_key="k", actor=user)
    ) == ("upload_too_large", 413)

    assert files_in(settings.UPLOAD_DIR) == []
    assert not Upload.objects.exists() and AuditEntry.objects.count() == entries


@pytest.mark.parametrize(
    "content",
    [b"", b"%PD", b"<html><script>alert(1)</script></html>", b"GIF89a" + b"\x00" * 20],
)
def test_other_content_is_refused_whatever_its_name(user, content):
    assert refused(lambda: store(user, content, name="scan.pdf")) == ("upload_type_invalid", 415)
    assert files_in(settings.UPLOAD_DIR) == [] and not Upload.objects.exists()


def test_a_failure_after_writing_removes_the_file(user, monkeypatch):
    def broken(**kwargs):
        raise RuntimeError("database gone")

    monkeypatch.setattr(Upload.objects, "create", broken)
    with pytest.raises(RuntimeError):
        store(user, PDF)
    assert files_in(settings.UPLOAD_DIR) == []


def test_django_uploaded_files_are_read_in_chunks(user):
    file = SimpleUploadedFile("photo.jpg", JPEG, content_type="text/plain")
    upload = uploads.upload_store(file=file, name=file.name, material_key="id_photo", actor=user)
    assert (upload.content_type, upload.material_key) == ("image/jpeg", "id_photo")


def test_only_applicants_and_window_staff_upload_for_a_named_material(user):
    admin = make_user(role="data_admin")
    assert refused(lambda: store(admin, PDF)) == ("permission_denied", 403)
    assert refused(
        lambda: uploads.upload_store(
            file=io.BytesIO(PDF), name="a.pdf", material_key="../x", actor=user
        )
    ) == ("case_input_invalid", 422)
