"""Printing a license (证照打印): one A4 PDF a holder can download, print or forward.

The page, top to bottom: a thin double frame; the kind (电子证照 / 电子证明) and the license
type's name as the title; for a copy (副本/加注件) a line saying what it is for and until when;
the GB/T 36903 metadata as a two-column table (证照信息); the surface fields under their
Chinese titles from the type's JSON Schema (照面信息); and, at the foot of the last page, the
offline QR (离线核验码), the optional online QR (在线核验), and the issuer's name and date
under the red seal. A copy carries a light-grey diagonal watermark over every page, drawn on
top of the content so that nothing covers it; an original carries none. Long surface fields
flow onto further pages, each framed and titled "（续）".

Chinese text uses WenQuanYi Micro Hei (Debian ``fonts-wqy-microhei``), embedded as a subset,
so the PDF looks and searches the same everywhere and text extraction gives the characters
back exactly. Parsing the 49,531-glyph font takes fpdf2 well over 100 ms, so this module
parses it once per process (about 35 MB) and hands fpdf2 a small font of just the glyphs the
page needs (`font_subset`); a character it did not foresee makes it build the font again with
that character. The seal is the seal's own SVG drawn as vectors (crisp at any zoom, so it is
no image XObject); the QRs are PNG images from segno. The document has no JavaScript, links,
annotations or anything it would load from elsewhere. For a person only the masked ID number
is printed; an organization's credit code is public and printed in full.
"""

import copy as copying
import datetime as dt
import io
import logging
import math
import re
import shutil
import string
import subprocess
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any, cast

import segno
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from fontTools import ttLib
from fontTools.ttLib.tables._c_m_a_p import CmapSubtable
from fontTools.ttLib.tables._g_l_y_f import Glyph
from fpdf import FPDF, FontFace
from fpdf.enums import MethodReturnValue, TableBordersLayout, TextMode, XPos, YPos

from tongban.core.errors import TongbanError
from tongban.core.ids import mask_id

from .models import License
from .offline_qr import offline_qr_image

logger = logging.getLogger(__name__)

FONT_PATH = Path("/usr/share/fonts/truetype/wqy/wqy-microhei.ttc")
FONT_FAMILY = "WenQuanYi Micro Hei"
FONT = "wqy"  # the name the font is registered under in the PDF (and in the seal's SVG)

# Colours (RGB 0-255) and geometry (mm) of the page.
INK = (26, 26, 26)
MUTED = (96, 96, 96)
RULE = (200, 200, 200)
LABEL_FILL = (244, 244, 242)
FRAME = (150, 40, 40)
SEAL_RED = (210, 31, 31)
ALERT = (180, 20, 20)
WATERMARK = (128, 128, 128)
PAGE_W, PAGE_H = 210.0, 297.0
MARGIN = 22.0
FOOTER_MARGIN = 22.0  # auto page break leaves this much at the foot for the footer line
LABEL_WIDTH = 42.0
VALUE_WIDTH = PAGE_W - 2 * MARGIN - LABEL_WIDTH
CELL_PADDING = 3.0
LINE_HEIGHT = 5.6
ROW_LINES = 20  # a longer value goes on in another row
QR_SIZE = 44.0  # the offline QR with its quiet zone: about 0.39 mm a module at version 22
ONLINE_QR_SIZE = 26.0
SEAL_SIZE = 44.0  # the seal's ring comes to about 41 mm, the size of an official seal
SIGN_BLOCK_HEIGHT = QR_SIZE + 12.0

STATUS_NOTES: dict[str, str] = {
    License.Status.SUSPENDED: "本证照已被发证机关中止，暂停使用",
    License.Status.REVOKED: "本证照已被发证机关吊销或注销，不再有效",
}
PAGE_LABEL = "第 {page} 页 / 共 {{nb}} 页"  # {nb}: fpdf2's alias for the number of pages
# Every fixed text of the page, so that the font subset has its glyphs from the start.
FIXED_TEXT = (
    "电子证照电子证明（副本）（续）副本 · 仅供使用有效期至年月日起长期"
    "证照信息照面信息离线核验码在线核验无需联网，用通办核验程序扫码签发打印于"
    "持证主体公民身份号码统一社会信用代码证照编号发证机关签发日期有效期证照标识"
    "是否—、" + "".join(STATUS_NOTES.values())
)


class PdfFontMissing(TongbanError):
    code = "pdf_font_missing"
    status = 500
    default_message = _(
        "The Chinese font for printing licenses is not installed "
        "(WenQuanYi Micro Hei, Debian package fonts-wqy-microhei)."
    )


@dataclass(frozen=True)
class CopyWatermark:
    """A copy for one purpose (副本/加注件), e.g. "办理入学", valid until a date."""

    purpose: str
    expires_on: dt.date

    @property
    def text(self) -> str:
        return f"仅供{self.purpose}使用 · 有效期至{cn_date(self.expires_on)}"


@dataclass(frozen=True)
class CjkFont:
    path: Path
    index: int  # the face in a TrueType collection (.ttc)


@cache
def cjk_font() -> CjkFont:
    """Where WenQuanYi Micro Hei is: Debian's path, else wherever fontconfig knows it.

    Raises `PdfFontMissing` when neither has it (fontconfig's fallback to some other family
    does not count). A found font is remembered; a missing one is looked for again."""
    if FONT_PATH.is_file():
        return CjkFont(FONT_PATH, 0)
    fc_match = shutil.which("fc-match")
    if fc_match is not None:
        try:
            found = subprocess.run(  # noqa: S603 (fixed arguments, no shell)
                [fc_match, "-f", "%{file}\n%{index}\n%{family}", FONT_FAMILY],
                capture_output=True,
                text=True,
                timeout=10,
                check=False,
            )
        except (OSError, subprocess.SubprocessError) as exc:
            logger.warning("fc-match failed: %s", exc)
        else:
            file, _sep, rest = found.stdout.partition("\n")
            index, _sep, families = rest.partition("\n")
            if (
                found.returncode == 0
                and FONT_FAMILY in [f.strip() for f in families.split(",")]
                and Path(file).is_file()
            ):
                return CjkFont(Path(file), int(index) if index.isdigit() else 0)
    raise PdfFontMissing(path=str(FONT_PATH))


class _FontSource:
    """The whole font, parsed once, read-only after that (so safe to share between threads),
    and the subsets cut from it."""

    def __init__(self, font: CjkFont) -> None:
        self.font = ttLib.TTFont(
            str(font.path), fontNumber=font.index, lazy=True, recalcTimestamp=False
        )
        self.cmap: dict[int, str] = self.font.getBestCmap()
        self.glyf = self.font["glyf"]
        self.hmtx = self.font["hmtx"].metrics
        self.glyph_ids: dict[str, int] = self.font.getReverseGlyphMap()
        for tag in ("head", "hhea", "OS/2", "maxp", "name", "post", "fpgm", "prep", "cvt "):
            if tag in self.font:
                self.font[tag]  # load every table now, not while a request waits

    def has(self, char: str) -> bool:
        return ord(char) in self.cmap

    def _glyph(self, name: str) -> Glyph:
        """A private copy of a glyph: raw bytes that pass through unchanged, except that a
        composite glyph is unpacked so it is written again with its components' new IDs."""
        data = self.glyf.glyphs[name].compile(self.glyf, recalcBBoxes=False)
        glyph = Glyph(data)
        if glyph_is_composite(data):
            glyph.expand(self.glyf)
        return glyph

    def subset(self, chars: Iterable[str]) -> bytes:
        """A TrueType font of just these characters' glyphs, with the source's hinting,
        metrics and English names, and no layout tables (fpdf2 does not shape text here)."""
        src = self.font
        cmap = {ord(c): self.cmap[ord(c)] for c in set(chars) if ord(c) in self.cmap}
        glyphs: dict[str, Glyph] = {}
        todo = [".notdef", *cmap.values()]
        while todo:
            name = todo.pop()
            if name not in glyphs:
                glyphs[name] = glyph = self._glyph(name)
                if not hasattr(glyph, "data") and glyph.isComposite():
                    todo.extend(c.glyphName for c in glyph.components)
        names = sorted(glyphs, key=self.glyph_ids.__getitem__)
        font = ttLib.TTFont(recalcBBoxes=False, recalcTimestamp=False)
        font.setGlyphOrder(names)
        for tag in ("head", "hhea", "OS/2", "maxp", "fpgm", "prep", "cvt ", "gasp"):
            if tag in src:
                font[tag] = copying.copy(src[tag])  # compiling sets glyph and metric counts
        names_table = ttLib.newTable("name")
        names_table.names = [
            record
            for record in src["name"].names
            if record.nameID <= 6 and record.toUnicode().isascii()
        ]
        font["name"] = names_table
        post = copying.copy(src["post"])
        post.formatType, post.extraNames, post.mapping = 3.0, [], {}
        font["post"] = post
        glyf = ttLib.newTable("glyf")
        glyf.glyphOrder, glyf.glyphs = names, glyphs
        font["glyf"] = glyf
        font["loca"] = ttLib.newTable("loca")
        hmtx = ttLib.newTable("hmtx")
        hmtx.metrics = {name: self.hmtx[name] for name in names}
        font["hmtx"] = hmtx
        font["cmap"] = _cmap_table(cmap)
        out = io.BytesIO()
        font.save(out)
        return out.getvalue()


def glyph_is_composite(data: bytes) -> bool:
    return len(data) >= 2 and int.from_bytes(data[:2], "big", signed=True) == -1


def _cmap_table(cmap: dict[int, str]) -> Any:
    table = ttLib.newTable("cmap")
    table.tableVersion = 0
    bmp = CmapSubtable.newSubtable(4)
    bmp.platformID, bmp.platEncID, bmp.language = 3, 1, 0
    bmp.cmap = {cp: name for cp, name in cmap.items() if cp <= 0xFFFF}
    table.tables = [bmp]
    if any(cp > 0xFFFF for cp in cmap):  # rare characters of names, CJK extension B on
        full = CmapSubtable.newSubtable(12)
        full.platformID, full.platEncID, full.language = 3, 10, 0
        full.cmap = dict(cmap)
        table.tables.append(full)
    return table


@cache
def _font_source(font: CjkFont) -> _FontSource:
    return _FontSource(font)


def font_subset(chars: Iterable[str]) -> bytes:
    """WenQuanYi Micro Hei cut down to these characters (and printable ASCII)."""
    return _font_source(cjk_font()).subset({*chars, *string.printable})


def cn_date(value: dt.date) -> str:
    return f"{value.year}年{value.month}月{value.day}日"


def _field_text(value: Any, schema: dict[str, Any]) -> str:
    """A surface value as printed: dates the Chinese way, yes/no, lists with 、."""
    if value is None or value == "":
        return "—"
    if isinstance(value, bool):
        return "是" if value else "否"
    if isinstance(value, list):
        return "、".join(_field_text(v, schema.get("items", {})) for v in value)
    if isinstance(value, str):
        try:
            if schema.get("format") == "date":
                return cn_date(dt.date.fromisoformat(value))
            if schema.get("format") == "date-time":
                moment = dt.datetime.fromisoformat(value)
                if timezone.is_aware(moment):
                    moment = timezone.localtime(moment)
                return f"{cn_date(moment.date())} {moment:%H:%M}"
        except ValueError:
            pass
    return str(value)


def surface_rows(license: License) -> list[tuple[str, str]]:
    """(Chinese title, printed value) of each surface field, in the schema's order."""
    properties: dict[str, Any] = license.license_type.surface_schema.get("properties", {})
    names = [n for n in properties if n in license.surface]
    names += [n for n in license.surface if n not in properties]
    return [
        (
            str(properties.get(name, {}).get("title") or name),
            _field_text(license.surface[name], properties.get(name, {})),
        )
        for name in names
    ]


def metadata_rows(license: License) -> list[tuple[str, str]]:
    """The GB/T 36903 metadata as printed: a person's ID number masked, an organization's
    credit code in full (it is public, and printed so on a business licence)."""
    if license.holder_person is not None:
        holder = license.holder_person.name
        code_row = ("公民身份号码", mask_id(license.holder_person.resident_id))
    else:
        assert license.holder_organization is not None  # the database constraint says so
        holder = license.holder_organization.name
        code_row = ("统一社会信用代码", license.holder_organization.credit_code)
    if license.valid_until is None:
        validity = f"{cn_date(license.valid_from)}起长期有效"
    else:
        validity = f"{cn_date(license.valid_from)}至{cn_date(license.valid_until)}"
    return [
        ("持证主体", holder),
        code_row,
        ("证照编号", license.number),
        ("发证机关", license.issuer.name),
        ("签发日期", cn_date(timezone.localdate(license.issued_at))),
        ("有效期", validity),
        ("证照标识", license.identifier),
    ]


def _png(qr: segno.QRCode) -> io.BytesIO:
    buf = io.BytesIO()
    qr.save(buf, kind="png", scale=4)
    buf.seek(0)
    return buf


class _LicensePage(FPDF):
    """A4 with the frame on every page, "(续)" atop further pages and, on a copy, the
    watermark over everything. Characters the font has but its subset lacks are noted in
    `unforeseen`, so that the caller builds the font again with them."""

    def __init__(
        self,
        *,
        title: str,
        watermark: str | None,
        footer_text: str,
        charset: set[str],
        source: _FontSource,
    ) -> None:
        super().__init__(orientation="portrait", unit="mm", format="A4")
        self.running_title = title
        self.watermark = watermark
        self.footer_text = footer_text
        self.charset = charset
        self.source = source
        self.unforeseen: set[str] = set()

    def normalize_text(self, text: str) -> str:
        self.unforeseen.update(c for c in text if c not in self.charset and self.source.has(c))
        return super().normalize_text(text)

    def header(self) -> None:
        with self.local_context(draw_color=FRAME):
            self.set_line_width(0.6)
            self.rect(10, 10, PAGE_W - 20, PAGE_H - 20)
            self.set_line_width(0.2)
            self.rect(11.6, 11.6, PAGE_W - 23.2, PAGE_H - 23.2)
        if self.page_no() > 1:
            with self.local_context(text_color=MUTED):
                self.set_font(FONT, size=9)
                self.set_xy(MARGIN, 16)
                self.cell(0, 5, f"{self.running_title}（续）", align="C")
            self.set_y(MARGIN + 2)

    def footer(self) -> None:
        self.set_font(FONT, size=7.5)
        self.set_text_color(*MUTED)
        self.set_xy(MARGIN, PAGE_H - 18)
        self.cell(PAGE_W - 2 * MARGIN - 25, 4, self.footer_text)
        self.cell(25, 4, PAGE_LABEL.format(page=self.page_no()), align="R")
        if self.watermark:
            self._draw_watermark(self.watermark)

    def _draw_watermark(self, text: str) -> None:
        self.set_font(FONT, size=15)
        step = self.get_string_width(text) + 18
        span = math.hypot(PAGE_W, PAGE_H)  # rows this long cover the page however turned
        with (
            self.local_context(text_color=WATERMARK, fill_opacity=0.28),
            self.rotation(32, x=PAGE_W / 2, y=PAGE_H / 2),
        ):
            for row in range(int(span // 30) + 1):
                y = PAGE_H / 2 - span / 2 + row * 30
                x = PAGE_W / 2 - span / 2 - (row % 2) * step / 2
                while x < PAGE_W / 2 + span / 2:
                    self.text(x, y, text)
                    x += step


def _chunks(pdf: FPDF, value: str, size: float) -> list[str]:
    """A value in pieces of at most ROW_LINES lines, broken where the cell would break it:
    fpdf2 cannot split a table row across pages, so a long field goes on in further rows."""
    pdf.set_font(FONT, size=size)
    lines = cast(
        list[str],
        pdf.multi_cell(
            VALUE_WIDTH - 2 * CELL_PADDING,
            LINE_HEIGHT,
            value,
            dry_run=True,
            output=MethodReturnValue.LINES,
        ),
    )
    if len(lines) <= ROW_LINES:
        return [value]
    return ["\n".join(lines[i : i + ROW_LINES]) for i in range(0, len(lines), ROW_LINES)]


def _table(pdf: FPDF, rows: list[tuple[str, str]]) -> None:
    label_style = FontFace(color=MUTED, fill_color=LABEL_FILL, size_pt=10)
    with pdf.table(
        col_widths=(LABEL_WIDTH, VALUE_WIDTH),
        width=PAGE_W - 2 * MARGIN,
        first_row_as_headings=False,
        borders_layout=TableBordersLayout.HORIZONTAL_LINES,
        line_height=LINE_HEIGHT,
        padding=(2.2, CELL_PADDING),
        v_align="TOP",
    ) as table:
        for label, value in rows:
            size = 11.0
            if label == "证照标识":  # long and unbreakable: as large as fits on one line
                pdf.set_font(FONT, size=10)
                width = pdf.get_string_width(value) + 0.5
                size = max(7.0, min(10.0, 10 * (VALUE_WIDTH - 2 * CELL_PADDING) / width))
            for i, chunk in enumerate(_chunks(pdf, value, size)):
                row = table.row()
                row.cell(label if i == 0 else f"{label}（续）", style=label_style)
                row.cell(chunk, style=FontFace(size_pt=size, color=INK))


def _heading(pdf: FPDF, text: str) -> None:
    pdf.ln(6)
    pdf.set_font(FONT, size=11)
    pdf.set_text_color(*FRAME)
    pdf.cell(0, 6, text, new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    with pdf.local_context(draw_color=FRAME):
        pdf.set_line_width(0.4)
        pdf.line(MARGIN, pdf.get_y() + 0.5, MARGIN + 12, pdf.get_y() + 0.5)
    pdf.ln(3)
    pdf.set_draw_color(*RULE)
    pdf.set_line_width(0.2)
    pdf.set_text_color(*INK)


def _seal_svg(svg: str) -> str:
    """fpdf2 draws SVG <text> only in a font it knows: name ours on the root element, from
    which every text inherits it."""
    return re.sub(r"<svg\b", f'<svg font-family="{FONT}"', svg, count=1)


def _seal(pdf: FPDF, svg: str, *, x: float, y: float, issuer: str) -> None:
    """The seal's SVG as vectors, multiplied over the ink below it like a stamp."""
    with pdf.local_context(blend_mode="Multiply"):
        try:
            pdf.image(io.BytesIO(_seal_svg(svg).encode()), x=x, y=y, w=SEAL_SIZE, h=SEAL_SIZE)
            return
        except Exception:  # fpdf2's SVG support is partial: draw the seal ourselves
            logger.exception("seal SVG not drawable, drawing a plain seal instead")
        _plain_seal(pdf, x + SEAL_SIZE / 2, y + SEAL_SIZE / 2, SEAL_SIZE * 0.47, issuer)


def _plain_seal(pdf: FPDF, cx: float, cy: float, r: float, name: str) -> None:
    """The seal_image recipe in drawing primitives: ring, star, the name along the arc."""
    with pdf.local_context(draw_color=SEAL_RED, fill_color=SEAL_RED, text_color=SEAL_RED):
        pdf.set_line_width(r * 0.05)
        pdf.circle(cx, cy, r, style="D")
        star = []
        for i in range(10):
            radius, angle = (r * 0.34 if i % 2 == 0 else r * 0.13), math.pi / 2 + i * math.pi / 5
            star.append((cx + radius * math.cos(angle), cy - radius * math.sin(angle)))
        pdf.polygon(star, style="F")
        pdf.set_font(FONT, size=r * 0.5 / 0.3528)  # characters about half the radius high
        span = min(240.0, 22.0 * len(name))
        for i, char in enumerate(name):
            angle = -span / 2 + span * (i + 0.5) / len(name)
            x = cx + r * 0.72 * math.sin(math.radians(angle))
            y = cy - r * 0.72 * math.cos(math.radians(angle))
            with pdf.rotation(-angle, x=x, y=y):
                pdf.text(x - pdf.get_string_width(char) / 2, y + r * 0.1, char)


def _sign_block(
    pdf: FPDF, license: License, qr_text: str, online_url: str | None, top: float
) -> None:
    """Foot of the last page: offline QR, online QR, issuer and date under the seal."""
    pdf.image(_png(offline_qr_image(qr_text)), x=MARGIN - 2, y=top, w=QR_SIZE, h=QR_SIZE)
    pdf.set_font(FONT, size=9.5)
    pdf.set_text_color(*INK)
    pdf.set_xy(MARGIN - 2, top + QR_SIZE)
    pdf.cell(QR_SIZE, 4.5, "离线核验码", align="C")
    pdf.set_font(FONT, size=7)
    pdf.set_text_color(*MUTED)
    pdf.set_xy(MARGIN - 2, top + QR_SIZE + 4.5)
    pdf.cell(QR_SIZE, 3.5, "无需联网，用通办核验程序扫码", align="C")
    if online_url:
        x = MARGIN - 2 + QR_SIZE + 4
        qr = segno.make(online_url, error="M", micro=False)
        pdf.image(_png(qr), x=x, y=top + QR_SIZE - ONLINE_QR_SIZE, w=ONLINE_QR_SIZE)
        pdf.set_font(FONT, size=9.5)
        pdf.set_text_color(*INK)
        pdf.set_xy(x, top + QR_SIZE)
        pdf.cell(ONLINE_QR_SIZE, 4.5, "在线核验", align="C")
    # Issuer and date, on the right; the seal sits over them, as stamped by hand.
    block_w = 70.0
    x = PAGE_W - MARGIN - block_w
    pdf.set_text_color(*INK)
    pdf.set_font(FONT, size=12)
    pdf.set_xy(x, top + QR_SIZE / 2 - 1)
    pdf.cell(block_w, 7, license.issuer.name, align="C", new_x=XPos.LEFT, new_y=YPos.NEXT)
    pdf.set_font(FONT, size=10.5)
    pdf.cell(block_w, 6, cn_date(timezone.localdate(license.issued_at)), align="C")
    _seal(
        pdf,
        license.seal.image_svg,
        x=x + block_w / 2 - SEAL_SIZE / 2,
        y=top + QR_SIZE / 2 + 4 - SEAL_SIZE / 2,
        issuer=license.issuer.name,
    )


def license_pdf(
    *,
    license: License,
    qr_text: str,
    copy: CopyWatermark | None = None,
    online_url: str | None = None,
) -> bytes:
    """The license as an A4 PDF (bytes): metadata, surface fields, seal, the offline QR of
    `qr_text`, the online QR of `online_url` when given, and a watermark on a `copy`.

    Raises `PdfFontMissing` without the Chinese font, and the offline QR's coded errors
    ("qr_too_large", "qr_format") for a text that makes no QR of at most version 22."""
    source = _font_source(cjk_font())
    metadata, surface = metadata_rows(license), surface_rows(license)
    now = timezone.localtime()
    footer = f"{license.issuer.name}签发 · 打印于{cn_date(now.date())} {now:%H:%M}"
    footer += " · 副本" if copy else ""
    texts = [
        footer,  # footers are drawn in output(), too late to notice what they need
        PAGE_LABEL,
        license.license_type.name,
        license.license_type.name_en,
        license.seal.image_svg,
        copy.text if copy else "",
        copy.purpose if copy else "",
        *(text for row in [*metadata, *surface] for text in row),
    ]
    charset = {*FIXED_TEXT, *string.printable, *"".join(texts)}
    content = _Content(license, qr_text, copy, online_url, metadata, surface, footer, now)
    # fpdf2 takes fonts from files only: the subset lives in a temporary one, read by output().
    with tempfile.TemporaryDirectory(prefix="tongban-pdf-") as tmp:
        font_file = Path(tmp) / "wqy-subset.ttf"
        font_file.write_bytes(source.subset(charset))
        pdf = _render(content, font_file=font_file, charset=charset, source=source)
        if pdf.unforeseen:  # text this function did not list: render again with its glyphs
            logger.warning("license PDF: characters not foreseen: %s", "".join(pdf.unforeseen))
            charset |= pdf.unforeseen
            font_file = Path(tmp) / "wqy-subset-2.ttf"
            font_file.write_bytes(source.subset(charset))
            pdf = _render(content, font_file=font_file, charset=charset, source=source)
        return bytes(pdf.output())


@dataclass(frozen=True)
class _Content:
    license: License
    qr_text: str
    copy: CopyWatermark | None
    online_url: str | None
    metadata: list[tuple[str, str]]
    surface: list[tuple[str, str]]
    footer: str
    now: dt.datetime


def _render(
    content: _Content, *, font_file: Path, charset: set[str], source: _FontSource
) -> _LicensePage:
    """The laid-out document in the subset font of `font_file`, read until output()."""
    license, copy = content.license, content.copy
    license_type = license.license_type
    kind = "电子证明" if license_type.kind == license_type.Kind.PROOF else "电子证照"
    now = content.now
    title = f"{license_type.name}（副本）" if copy else license_type.name
    pdf = _LicensePage(
        title=title,
        watermark=copy.text if copy else None,
        footer_text=content.footer,
        charset=charset,
        source=source,
    )
    pdf.add_font(FONT, fname=font_file)
    pdf.set_title(title)
    pdf.set_author(license.issuer.name)
    pdf.set_subject(f"{kind} {license.identifier}")
    pdf.set_creator("Tongban")
    pdf.set_producer("Tongban")
    pdf.set_creation_date(now)
    pdf.set_lang("zh-CN")
    pdf.set_margins(MARGIN, MARGIN, MARGIN)
    pdf.set_auto_page_break(True, margin=FOOTER_MARGIN)
    pdf.add_page()

    pdf.set_y(20)
    pdf.set_font(FONT, size=9)
    pdf.set_text_color(*MUTED)
    pdf.cell(0, 5, kind, align="C", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.ln(2)
    pdf.set_font(FONT, size=26)
    pdf.set_text_color(*INK)
    # The font has no bold face: fill and outline the glyphs instead.
    with pdf.local_context(text_mode=TextMode.FILL_STROKE, line_width=0.25, draw_color=INK):
        pdf.cell(0, 13, license_type.name, align="C", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    if license_type.name_en:
        pdf.set_font(FONT, size=10)
        pdf.set_text_color(*MUTED)
        pdf.cell(0, 5, license_type.name_en, align="C", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    notes = []
    if copy:
        notes.append(f"副本 · 仅供{copy.purpose}使用 · 有效期至{cn_date(copy.expires_on)}")
    if license.status in STATUS_NOTES:
        notes.append(STATUS_NOTES[license.status])
    for note in notes:
        pdf.ln(2)
        pdf.set_font(FONT, size=11)
        pdf.set_text_color(*ALERT)
        pdf.cell(0, 6, note, align="C", new_x=XPos.LMARGIN, new_y=YPos.NEXT)

    _heading(pdf, "证照信息")
    _table(pdf, content.metadata)
    if content.surface:
        _heading(pdf, "照面信息")
        _table(pdf, content.surface)

    top = PAGE_H - FOOTER_MARGIN - 6 - SIGN_BLOCK_HEIGHT
    if pdf.get_y() + 6 > top:
        pdf.add_page()
    _sign_block(pdf, license, content.qr_text, content.online_url, top)
    return pdf
