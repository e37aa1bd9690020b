"""Uploaded materials (上传材料): a file is checked by its content (PDF, PNG or JPEG — never
by its name or the type the browser claims), limited in size, hashed, and stored under a
random name in `settings.UPLOAD_DIR`, which lies outside the web root: nothing serves it,
pages hand files out only after checking who asks.

A refused file leaves nothing behind: it is written to a temporary name first and only
renamed to its final name once every check has passed, and removed on any failure. Call
`upload_store` in its own transaction (as the pages do): if an enclosing transaction rolled
back after it, the file would stay on disk without a record, unreachable but not removed."""

import hashlib
import os
import re
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from django.conf import settings
from django.core.files.uploadedfile import UploadedFile
from django.db import transaction
from django.utils.translation import gettext_lazy as _

from tongban.audit.services import audit_record
from tongban.core.errors import PermissionDeniedError
from tongban.people.models import User

from .errors import CaseInputInvalid, UploadTooLarge, UploadTypeInvalid
from .models import Upload

# Magic bytes at the start of each accepted file type.
SIGNATURES = (
    (b"%PDF-", "application/pdf"),
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
)
HEAD_BYTES = max(len(magic) for magic, _type in SIGNATURES)
CHUNK_BYTES = 64 * 1024
NAME_MAX = 200
KEY_PATTERN = re.compile(r"^[-a-zA-Z0-9_]{1,64}$")
STORED_NAME = re.compile(r"^[0-9a-f]{32}$")
UPLOADER_ROLES = (User.Role.CITIZEN, User.Role.ORG_AGENT, User.Role.STAFF)


def content_type_sniff(head: bytes) -> str | None:
    """The type a file's first bytes show, or None when it is none we accept."""
    for magic, content_type in SIGNATURES:
        if head.startswith(magic):
            return content_type
    return None


def upload_directory() -> Path:
    directory = Path(settings.UPLOAD_DIR)
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    return directory


def upload_path(upload: Upload) -> Path:
    """Where an upload's bytes are. The stored name is ours (random hex), never the
    uploader's, so it cannot point outside the directory."""
    if not STORED_NAME.match(upload.stored_name):
        raise ValueError("an upload's stored name is 32 hex digits")
    return Path(settings.UPLOAD_DIR) / upload.stored_name


def _name_cleaned(name: str) -> str:
    # Only the last path component, without control characters: it is shown, never used
    # as a path.
    base = re.split(r"[\\/]", str(name))[-1]
    base = "".join(ch for ch in base if ch.isprintable()).strip()
    return base[-NAME_MAX:] or "upload"


def _chunks(file: IO[bytes] | UploadedFile) -> Iterator[bytes]:
    if isinstance(file, UploadedFile):
        yield from file.chunks(CHUNK_BYTES)
        return
    while chunk := file.read(CHUNK_BYTES):
        yield chunk


def _max_bytes() -> int:
    return int(settings.UPLOAD_MAX_BYTES)


def _too_large() -> UploadTooLarge:
    limit = _max_bytes()
    return UploadTooLarge(
        _("A file may have at most %(mb)s MB.") % {"mb": round(limit / 1024 / 1024, 1)},
        limit=limit,
    )


@transaction.atomic
def upload_store(
    *, file: IO[bytes] | UploadedFile, name: str, material_key: str, actor: User
) -> Upload:
    """Store one uploaded file for a material; return its record (not yet attached to any
    application: submitting attaches it). Refusals store nothing: upload_too_large,
    upload_type_invalid."""
    if not isinstance(actor, User) or actor.role not in UPLOADER_ROLES:
        raise PermissionDeniedError(_("Only applicants and window staff upload materials."))
    if not KEY_PATTERN.match(material_key or ""):
        raise CaseInputInvalid(_("Say which material the file is for."), field="material_key")
    declared: Any = getattr(file, "size", None)
    if isinstance(declared, int) and declared > _max_bytes():
        raise _too_large()
    directory = upload_directory()
    stored_name = secrets.token_hex(16)
    partial = directory / f".{stored_name}.part"
    final = directory / stored_name
    digest = hashlib.sha256()
    size = 0
    head = b""
    content_type: str | None = None
    try:
        descriptor = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "wb") as out:
            for chunk in _chunks(file):
                size += len(chunk)
                if size > _max_bytes():
                    raise _too_large()
                if content_type is None:
                    head = (head + chunk)[:HEAD_BYTES]
                    if len(head) >= HEAD_BYTES:
                        content_type = content_type_sniff(head)
                        if content_type is None:
                            raise UploadTypeInvalid()
                digest.update(chunk)
                out.write(chunk)
        if content_type is None:  # shorter than the longest signature
            content_type = content_type_sniff(head)
            if content_type is None:
                raise UploadTypeInvalid()
        os.replace(partial, final)
        upload = Upload.objects.create(
            material_key=material_key,
            stored_name=stored_name,
            original_name=_name_cleaned(name),
            content_type=content_type,
            size=size,
            sha256=digest.hexdigest(),
            uploaded_by=actor,
        )
        audit_record(
            action="upload.create",
            actor=actor,
            target=upload,
            after={
                "material": material_key,
                "content_type": content_type,
                "size": size,
                "sha256": upload.sha256,
            },
        )
    except BaseException:
        partial.unlink(missing_ok=True)
        final.unlink(missing_ok=True)
        raise
    return upload


def upload_open(upload: Upload) -> IO[bytes]:
    """The stored bytes, for a page that has already checked who asks."""
    return upload_path(upload).open("rb")
