"""The printed license (license_pdf): text that extracts back exactly, the embedded Chinese
font, the masked holder ID, the copy watermark, the QR images and the seal, and a page that
renders with poppler and whose QRs scan."""

import datetime as dt
import io
import shutil
import subprocess
from pathlib import Path

import pypdf
import pytest
import yaml
from PIL import Image

from tests.licensing.factories import SURFACE, issue_residence_permit, make_office
from tests.people.factories import make_organization, make_person
from tongban.core.errors import TongbanError
from tongban.core.ids import mask_id
from tongban.licensing import printing
from tongban.licensing.models import License
from tongban.licensing.printing import CopyWatermark, PdfFontMissing, cjk_font, license_pdf
from tongban.licensing.selectors import license_offline_qr
from tongban.licensing.services import license_issue
from tongban.portal.demo import CATALOG_FILE

pytestmark = pytest.mark.django_db

ONLINE_URL = "https://tongban.example.gov.cn/verify/8f3kQ2"
COPY = CopyWatermark(purpose="办理子女入学", expires_on=dt.date(2026, 9, 30))
DEMO_TYPES = yaml.safe_load(CATALOG_FILE.read_text(encoding="utf-8"))["license_types"]
PLACEHOLDERS = {
    "holder_name": "欧阳张三丰",
    "district": "历下区",
    "date": "2024-05-06",
    "year": "2024",
}
PDFTOPPM = shutil.which("pdftoppm") or "pdftoppm"  # Debian poppler-utils
needs_pdftoppm = pytest.mark.skipif(
    shutil.which("pdftoppm") is None, reason="pdftoppm missing: apt-get install poppler-utils"
)


@pytest.fixture
def office():
    return make_office()


@pytest.fixture
def license(office) -> License:
    return issue_residence_permit(office)


def read(pdf: bytes) -> pypdf.PdfReader:
    assert pdf.startswith(b"%PDF-")
    return pypdf.PdfReader(io.BytesIO(pdf))


def text_of(pdf: bytes) -> str:
    return "\n".join(page.extract_text() for page in read(pdf).pages)


def render(pdf: bytes, tmp_path: Path, *, dpi: int = 100, page: int = 1) -> Image.Image:
    (tmp_path / "license.pdf").write_bytes(pdf)
    pdf_file, png_stem = tmp_path / "license.pdf", tmp_path / "page"
    pages = ["-f", str(page), "-l", str(page), "-singlefile"]
    subprocess.run(  # noqa: S603 (our arguments, no shell)
        [PDFTOPPM, "-png", "-r", str(dpi), *pages, str(pdf_file), str(png_stem)],
        check=True,
        timeout=60,
    )
    return Image.open(tmp_path / "page.png").convert("RGB")


def test_text_extracts_exactly(license):
    pdf = license_pdf(license=license, qr_text=license_offline_qr(license=license))
    text = text_of(pdf)
    lines = text.splitlines()
    resident_id = license.holder_person.resident_id
    assert "居住证" in lines  # the title, on a line of its own
    assert "持证主体 张三" in lines
    assert f"公民身份号码 {mask_id(resident_id)}" in lines
    assert resident_id not in text and resident_id not in pdf.decode("latin-1")
    assert f"证照编号 {license.number}" in lines
    assert "发证机关 演示市公安局" in lines
    assert f"证照标识 {license.identifier}" in lines
    # Surface fields under their Chinese titles, dates the Chinese way.
    assert f"居住地址 {SURFACE['address']}" in lines
    assert "居住起始日期 2024年5月6日" in lines
    assert f"签注 {SURFACE['endorsement']}" in lines
    assert "离线核验码" in lines and "在线核验" not in text
    assert "副本" not in text and "仅供" not in text  # an original carries no watermark


def test_document_metadata_and_nothing_active(license):
    reader = read(license_pdf(license=license, qr_text=license_offline_qr(license=license)))
    meta = reader.metadata
    assert meta is not None
    assert meta.title == "居住证"
    assert meta.author == "演示市公安局"
    assert meta.producer == "Tongban" and meta.creator == "Tongban"
    assert meta.creation_date is not None
    root = reader.trailer["/Root"]
    assert "/Names" not in root and "/AA" not in root and "/AcroForm" not in root
    assert isinstance(root.get("/OpenAction", []), pypdf.generic.ArrayObject)  # a view, no JS
    for page in reader.pages:
        assert "/Annots" not in page and "/AA" not in page  # no links, no actions


def test_font_is_an_embedded_subset_of_wenquanyi(license):
    page = read(license_pdf(license=license, qr_text=license_offline_qr(license=license))).pages[0]
    fonts = [font.get_object() for font in page["/Resources"]["/Font"].values()]
    assert fonts
    for font in fonts:
        assert font["/Subtype"] == "/Type0"
        prefix, _plus, name = str(font["/BaseFont"]).lstrip("/").partition("+")
        assert name == "WenQuanYiMicroHei" and len(prefix) == 6  # a subset, named as one
        descriptor = font["/DescendantFonts"][0].get_object()["/FontDescriptor"].get_object()
        assert "/FontFile2" in descriptor  # the TrueType program itself is in the file


def test_small_font_subset_keeps_glyphs_and_components():
    data = printing.font_subset("居住证演示")
    assert 2_000 < len(data) < 60_000  # the whole font is 5 MB
    from fontTools import ttLib

    font = ttLib.TTFont(io.BytesIO(data))
    cmap = font.getBestCmap()
    assert {ord(c) for c in "居住证演示A1"} <= set(cmap)
    glyf = font["glyf"]
    for name in font.getGlyphOrder():  # every component a composite glyph uses is there
        glyph = glyf[name]
        if glyph.isComposite():
            assert all(c.glyphName in glyf.glyphs for c in glyph.components)


def test_copy_carries_watermark_and_note(license):
    pdf = license_pdf(license=license, qr_text=license_offline_qr(license=license), copy=COPY)
    text = text_of(pdf)
    assert COPY.text == "仅供办理子女入学使用 · 有效期至2026年9月30日"
    assert "副本 · 仅供办理子女入学使用 · 有效期至2026年9月30日" in text.splitlines()
    assert text.count(COPY.text) > 20  # repeated across the page
    assert read(pdf).metadata.title == "居住证（副本）"


def test_images_qrs_and_seal(license):
    pdf = license_pdf(
        license=license, qr_text=license_offline_qr(license=license), online_url=ONLINE_URL
    )
    page = read(pdf).pages[0]
    xobjects = [x.get_object() for x in page["/Resources"]["/XObject"].values()]
    assert len(xobjects) >= 2 and all(x["/Subtype"] == "/Image" for x in xobjects)
    # The seal is the seal's SVG drawn as vectors (no XObject): its red and its text are there.
    content = page.get_contents().get_data().decode("latin-1")
    assert "0.8235 0.1216 0.1216 RG" in content  # the ring, #d21f1f
    assert "0.8235 0.1216 0.1216 rg" in content  # the star and the text
    assert "电子证照专用章" in page.extract_text()
    states = [gs.get_object() for gs in page["/Resources"]["/ExtGState"].values()]
    assert any(gs.get("/BM") == "/Multiply" for gs in states)  # stamped over the ink


def test_original_has_one_qr_image(license):
    page = read(license_pdf(license=license, qr_text=license_offline_qr(license=license))).pages[0]
    assert len(page["/Resources"]["/XObject"]) == 1


@needs_pdftoppm
def test_page_renders_with_seal_bottom_right_and_qrs_that_scan(license, tmp_path):
    zxingcpp = pytest.importorskip("zxingcpp")
    qr_text = license_offline_qr(license=license)
    pdf = license_pdf(license=license, qr_text=qr_text, copy=COPY, online_url=ONLINE_URL)
    image = render(pdf, tmp_path, dpi=150)
    width, height = image.size
    assert abs(width - 1240) <= 2 and abs(height - 1754) <= 2  # A4 portrait at 150 dpi

    def red(box: tuple[int, int, int, int]) -> int:
        data = image.crop(box).tobytes()  # RGB, a byte each
        pixels = zip(data[0::3], data[1::3], data[2::3], strict=True)
        return sum(1 for r, g, b in pixels if r > 170 and g < 90 and b < 90)

    # The seal: plenty of red in the bottom right, none in the bottom left (the QRs).
    assert red((width // 2, height * 3 // 4, width, height)) > 5_000
    assert red((0, height * 3 // 4, width // 2, height)) < 200
    found = {barcode.text for barcode in zxingcpp.read_barcodes(image)}
    assert qr_text in found  # the offline QR scans through the watermark
    assert ONLINE_URL in found


def test_organization_holder_shows_its_credit_code(office):
    office.license_type.holder_kind = "organization"
    office.license_type.save()
    organization = make_organization()
    license = license_issue(
        license_type=office.license_type,
        holder=organization,
        surface=dict(SURFACE),
        actor=office.staff,
    )
    text = text_of(license_pdf(license=license, qr_text=license_offline_qr(license=license)))
    assert f"持证主体 {organization.name}" in text
    assert f"统一社会信用代码 {organization.credit_code}" in text


def test_revoked_license_says_so(license):
    license.status = License.Status.REVOKED
    text = text_of(license_pdf(license=license, qr_text=license_offline_qr(license=license)))
    assert "本证照已被发证机关吊销或注销，不再有效" in text


def test_long_fields_flow_onto_further_pages_with_the_seal_and_qr_at_the_end(license):
    license.surface["address"] = "演示市历下区龙奥北路8号，" * 160  # 2,080 characters
    reader = read(license_pdf(license=license, qr_text=license_offline_qr(license=license)))
    pages = [page.extract_text() for page in reader.pages]
    n = len(pages)
    assert n >= 2
    assert "证照标识" in pages[0] and all("居住证（续）" in page for page in pages[1:])
    assert "离线核验码" in pages[-1] and not any("离线核验码" in page for page in pages[:-1])
    assert f"第 {n} 页 / 共 {n} 页" in pages[-1]
    assert len(reader.pages[-1]["/Resources"]["/XObject"]) == 1
    flat = "".join("".join(page.split()) for page in pages)
    assert "居住地址（续）" in flat
    # All there, but for the few repetitions cut where a row goes on ("居住地址（续）").
    assert flat.count("演示市历下区龙奥北路8号，") >= 160 - 2 * n


def test_text_not_foreseen_builds_the_font_again(license, monkeypatch):
    monkeypatch.setattr(printing, "FIXED_TEXT", "")
    pdf = license_pdf(license=license, qr_text=license_offline_qr(license=license), copy=COPY)
    text = text_of(pdf)
    assert "离线核验码" in text and "证照信息" in text and "第 1 页 / 共 1 页" in text


@pytest.mark.parametrize("row", DEMO_TYPES, ids=[r["code"] for r in DEMO_TYPES])
def test_every_demo_type_prints_every_field(office, row):
    license_type = office.license_type
    for key in ("name", "name_en", "kind", "surface_schema", "qr_fields", "digest_fields"):
        setattr(license_type, key, row[key])
    license_type.holder_kind = "organization" if row["holder_kind"] == "organization" else "person"
    license_type.save()
    surface = {
        key: value.format(**PLACEHOLDERS) if isinstance(value, str) else value
        for key, value in row["example"].items()
    }
    holder = make_organization() if license_type.holder_kind == "organization" else make_person()
    license = license_issue(
        license_type=license_type, holder=holder, surface=surface, actor=office.staff
    )
    pdf = license_pdf(license=license, qr_text=license_offline_qr(license=license), copy=COPY)
    text = text_of(pdf)
    flat = "".join(text.split())  # long titles and values wrap over lines
    assert row["name"] in text.splitlines()
    assert ("电子证明" if row["kind"] == "proof" else "电子证照") in text
    for title, value in printing.surface_rows(license):
        assert "".join(title.split()) in flat
        assert "".join(value.split()) in flat


def test_font_missing_is_a_coded_error(monkeypatch):
    cjk_font.cache_clear()
    monkeypatch.setattr(printing, "FONT_PATH", Path("/nonexistent/wqy-microhei.ttc"))
    monkeypatch.setattr(printing.shutil, "which", lambda name: None)
    try:
        with pytest.raises(PdfFontMissing) as caught:
            cjk_font()
    finally:
        cjk_font.cache_clear()
    assert isinstance(caught.value, TongbanError)
    assert caught.value.code == "pdf_font_missing" and caught.value.status == 500
    assert "fonts-wqy-microhei" in str(caught.value)


@pytest.mark.parametrize(
    ("families", "found"),
    [("WenQuanYi Micro Hei,文泉驿微米黑,文泉驛微米黑", True), ("DejaVu Sans", False)],
)
def test_font_found_by_fontconfig_only_when_it_is_wenquanyi(monkeypatch, families, found):
    font_file = str(cjk_font().path)  # the real file, wherever it is installed
    cjk_font.cache_clear()
    monkeypatch.setattr(printing, "FONT_PATH", Path("/nonexistent/wqy-microhei.ttc"))
    monkeypatch.setattr(printing.shutil, "which", lambda name: "/usr/bin/fc-match")

    def fake_run(args, **kwargs):
        assert args[0] == "/usr/bin/fc-match" and args[-1] == "WenQuanYi Micro Hei"
        return subprocess.CompletedProcess(args, 0, stdout=f"{font_file}\n0\n{families}")

    monkeypatch.setattr(printing.subprocess, "run", fake_run)
    try:
        if found:
            assert cjk_font() == printing.CjkFont(Path(font_file), 0)
        else:
            with pytest.raises(PdfFontMissing):
                cjk_font()
    finally:
        cjk_font.cache_clear()
