"""The Simplified Chinese catalogue is complete, clean, and actually used by the UI."""

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import polib
import pytest

import tongban

LC_MESSAGES = Path(tongban.__file__).resolve().parent / "locale" / "zh_Hans" / "LC_MESSAGES"
PO_PATH = LC_MESSAGES / "django.po"

# %(name)s, %s, %d, ... (Python %-formatting) and {name} / {} (str.format).
# "%%" is a literal percent sign, not a placeholder.
PLACEHOLDER = re.compile(
    r"%%|%\([^)]+\)[-#0 +]*\d*(?:\.\d+)?[sdifgeEGxXor]|%[sdifgeEGxXor]|\{[^{}]*\}"
)


def placeholders(text: str) -> set[str]:
    return {m for m in PLACEHOLDER.findall(text) if m != "%%"}


@pytest.fixture(scope="module")
def po() -> polib.POFile:
    return polib.pofile(str(PO_PATH))


def label(entry: polib.POEntry) -> str:
    return f"msgid {entry.msgid!r}"


def test_header(po):
    assert po.metadata.get("Language") == "zh_Hans"
    assert po.metadata.get("Plural-Forms", "").replace(" ", "") == "nplurals=1;plural=0;"
    assert "charset=UTF-8" in po.metadata.get("Content-Type", "")
    assert not po.metadata_is_fuzzy


def test_every_entry_is_translated(po):
    untranslated = [label(e) for e in po.untranslated_entries()]
    assert untranslated == [], f"{len(untranslated)} untranslated: {untranslated}"
    # polib counts a plural entry as translated if any form is; Chinese has only msgstr[0].
    empty_plural = [label(e) for e in po if e.msgid_plural and not e.msgstr_plural.get(0)]
    assert empty_plural == []


def test_no_fuzzy_or_obsolete_entries(po):
    assert [label(e) for e in po.fuzzy_entries()] == []
    assert [label(e) for e in po.obsolete_entries()] == []


def test_placeholders_match(po):
    mismatches = []
    for entry in po.translated_entries():
        if entry.msgid_plural:
            pairs = [(entry.msgid_plural, entry.msgstr_plural.get(0, ""))]
        else:
            pairs = [(entry.msgid, entry.msgstr)]
        for source, translation in pairs:
            if placeholders(source) != placeholders(translation):
                mismatches.append(
                    f"{label(entry)}: {sorted(placeholders(source))} "
                    f"!= {sorted(placeholders(translation))} in {translation!r}"
                )
    assert mismatches == []


def test_translations_are_chinese_not_copies_of_the_english(po):
    # Codes, standard names and language names may stay as they are; anything else must change.
    allowed_same = {"English"}
    copied = [
        label(e)
        for e in po.translated_entries()
        if not e.msgid_plural and e.msgstr == e.msgid and e.msgid not in allowed_same
    ]
    assert copied == []


@pytest.mark.django_db
def test_home_page_renders_in_chinese(client):
    assert (LC_MESSAGES / "django.mo").exists(), (
        "django.mo is missing: run `tongban compilemessages` (make test does it)"
    )
    response = client.get("/", HTTP_ACCEPT_LANGUAGE="en")
    assert response.status_code == 200
    page = response.content.decode()
    assert "一网通办" in page
    assert "长辈模式" in page
    assert "One network for every service" not in page
    assert "Elder mode" not in page


def test_the_catalogue_holds_every_message_of_the_source(tmp_path, po):
    # makemessages over a copy of the source writes its catalogue into the copy's locale
    # directory (the nearest to the files), so the committed one is not touched.
    copy = tmp_path / "tongban"
    source = LC_MESSAGES.parent.parent.parent
    shutil.copytree(source, copy, ignore=shutil.ignore_patterns("__pycache__", "*.mo"))
    subprocess.run(
        [sys.executable, "-m", "django", "makemessages", "-l", "zh_Hans", "--no-location"],
        cwd=copy,
        env=os.environ | {"DJANGO_SETTINGS_MODULE": "tongban.config.settings"},
        check=True,
        capture_output=True,
    )
    extracted = polib.pofile(str(copy / "locale" / "zh_Hans" / "LC_MESSAGES" / "django.po"))
    committed = {(e.msgctxt, e.msgid) for e in po}
    missing = sorted(e.msgid for e in extracted if (e.msgctxt, e.msgid) not in committed)
    assert missing == [], f"run `make messages` and translate: {missing}"
