"""Pages: the holder's wallet (我的证照) with the offline QR (扫码亮证), and the public
verification page (核验) where anyone pastes or scans a license code."""

import datetime as dt
from urllib.parse import quote

import segno
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.safestring import SafeString, mark_safe
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from tongban.audit.services import audit_record
from tongban.core.errors import TongbanError

from . import offline_qr, printing, selectors, services, verification
from .forms import ConsentForm, CopyForm


def _svg(qr: segno.QRCode) -> SafeString:
    """A QR code as inline SVG. Safe: segno writes the markup from our own data."""
    return mark_safe(qr.svg_inline(scale=3, border=2, omitsize=True))  # noqa: S308


@login_required
@require_GET
def wallet(request: HttpRequest) -> HttpResponse:
    licenses = selectors.licenses_for_user(user=request.user)  # type: ignore[arg-type]
    audit_record(action="license.wallet_read", actor=request.user, purpose="holder's own wallet")
    one_code = None
    organization = getattr(request.user, "organization", None)
    if organization is not None and request.user.role == "org_agent":  # type: ignore[union-attr]
        token = selectors.one_code_token(organization=organization)
        url = request.build_absolute_uri(reverse("licensing:one_code", args=[token]))
        one_code = {"url": url, "svg": _svg(segno.make(url, error="M"))}
    return render(request, "licensing/wallet.html", {"licenses": licenses, "one_code": one_code})


@login_required
@require_GET
def license_detail(request: HttpRequest, pk: int) -> HttpResponse:
    license = selectors.license_for_user(user=request.user, pk=pk)  # type: ignore[arg-type]
    text = selectors.license_offline_qr(license=license)
    audit_record(
        action="license.read",
        actor=request.user,
        target=license,
        purpose="holder shows license",
        subject=services.holder_subject(license),
    )
    schema = license.license_type.surface_schema.get("properties", {})
    fields = [(schema.get(name, {}), value) for name, value in license.surface.items()]
    return render(
        request,
        "licensing/license.html",
        {
            "license": license,
            "fields": fields,
            "qr_text": text,
            "copies": selectors.copies_for_license(license=license),
            "consents": selectors.consents_for_license(license=license),
            "consent_form": ConsentForm(),
            # Both SVGs are generated here from our own data (escaped), never from input.
            "qr_svg": _svg(offline_qr.offline_qr_image(text)),
            "seal_svg": mark_safe(license.seal.image_svg),  # noqa: S308
        },
    )


@require_http_methods(["GET", "POST"])
def verify(request: HttpRequest) -> HttpResponse:
    result = None
    text = request.POST.get("text", "")[:4400] if request.method == "POST" else ""
    purpose = request.POST.get("purpose", "")[:60] if request.method == "POST" else ""
    if request.method == "POST":
        result = selectors.license_verify(text=text, purpose=purpose)
    response = render(
        request,
        "licensing/verify.html",
        {
            "text": text,
            "purpose": purpose,
            "result": result,
            "message": verification.REASON_MESSAGES[result.reason] if result else "",
        },
    )
    # This page may use the camera to scan codes; every other page may not.
    response.headers["Permissions-Policy"] = "camera=(self), microphone=(), geolocation=()"
    return response


@login_required
@require_http_methods(["GET", "POST"])
def copy_new(request: HttpRequest, pk: int) -> HttpResponse:
    """出具副本: choose the purpose, the fields to show and how long it lasts."""
    license = selectors.license_for_user(user=request.user, pk=pk)  # type: ignore[arg-type]
    form = CopyForm(request.POST or None, license_type=license.license_type)
    if request.method == "POST" and form.is_valid():
        try:
            copy = services.license_copy_create(
                license=license,
                purpose=form.cleaned_data["purpose"],
                recipient=form.cleaned_data["recipient"],
                fields=form.cleaned_data["disclose"],
                expires_at=timezone.now() + dt.timedelta(days=form.cleaned_data["days"]),
                actor=request.user,  # type: ignore[arg-type]
            )
        except TongbanError as exc:
            form.add_error(None, f"{exc.message} ({exc.code})")
        else:
            return redirect("licensing:copy", pk=copy.pk)
    return render(request, "licensing/copy_new.html", {"license": license, "form": form})


@login_required
@require_GET
def copy_detail(request: HttpRequest, pk: int) -> HttpResponse:
    copy = selectors.copy_for_user(user=request.user, pk=pk)  # type: ignore[arg-type]
    online_url = request.build_absolute_uri(reverse("licensing:online", args=[copy.token]))
    text = selectors.license_offline_qr(license=copy.license, copy=copy)
    return render(
        request,
        "licensing/copy.html",
        {
            "copy": copy,
            "online_url": online_url,
            "qr_text": text,
            # Both QRs are generated here from our own data, never from input.
            "qr_svg": _svg(offline_qr.offline_qr_image(text)),
            "online_svg": _svg(segno.make(online_url, error="M")),
        },
    )


@login_required
@require_POST
def copy_withdraw(request: HttpRequest, pk: int) -> HttpResponse:
    copy = selectors.copy_for_user(user=request.user, pk=pk)  # type: ignore[arg-type]
    services.license_copy_withdraw(copy=copy, actor=request.user)  # type: ignore[arg-type]
    messages.success(request, _("The copy was withdrawn; its link no longer works."))
    return redirect("licensing:license", pk=copy.license_id)


@require_GET
def online(request: HttpRequest, token: str) -> HttpResponse:
    """在线核验: what the holder chose to show, live status, and the purpose watermark. Each
    view is a read of the holder's data by a third party, so it is audited."""
    copy = selectors.copy_online(token=token)
    license = copy.license
    audit_record(
        action="license.copy_read",
        actor=request.user,
        target=copy,
        subject=services.holder_subject(license),
        purpose=copy.purpose,
    )
    properties = license.license_type.surface_schema.get("properties", {})
    fields = [
        (properties.get(n, {}), license.surface[n]) for n in copy.fields if n in license.surface
    ]
    return render(
        request, "licensing/online.html", {"copy": copy, "license": license, "fields": fields}
    )


@login_required
@require_POST
def consent_new(request: HttpRequest, pk: int) -> HttpResponse:
    """授权用证: let an organization use this license for a purpose until a date."""
    license = selectors.license_for_user(user=request.user, pk=pk)  # type: ignore[arg-type]
    form = ConsentForm(request.POST)
    if form.is_valid():
        try:
            services.consent_grant(
                license=license,
                grantee_code=form.cleaned_data["grantee_code"],
                purpose=form.cleaned_data["purpose"],
                valid_until=form.cleaned_data["valid_until"],
                actor=request.user,  # type: ignore[arg-type]
            )
        except TongbanError as exc:
            messages.error(request, f"{exc.message} ({exc.code})")
        else:
            messages.success(request, _("The organization may now use this license."))
    else:
        messages.error(request, _("Check the organization, purpose and date."))
    return redirect("licensing:license", pk=pk)


@login_required
@require_POST
def consent_withdraw(request: HttpRequest, pk: int) -> HttpResponse:
    consent = selectors.consent_for_user(user=request.user, pk=pk)  # type: ignore[arg-type]
    services.consent_withdraw(consent=consent, actor=request.user)  # type: ignore[arg-type]
    messages.success(request, _("The authorization was withdrawn."))
    return redirect("licensing:license", pk=consent.license_id)


@login_required
@require_GET
def authorized(request: HttpRequest) -> HttpResponse:
    """Licenses holders authorized this organization to use (被授权证照)."""
    consents = selectors.licenses_authorized_to(user=request.user)  # type: ignore[arg-type]
    return render(request, "licensing/authorized.html", {"consents": consents})


@login_required
@require_GET
def authorized_detail(request: HttpRequest, pk: int) -> HttpResponse:
    consent = selectors.authorized_license(user=request.user, consent_pk=pk)  # type: ignore[arg-type]
    license = consent.license
    assert license is not None  # authorized_license only returns license consents
    audit_record(
        action="license.authorized_read",
        actor=request.user,
        target=license,
        subject=services.holder_subject(license),
        purpose=consent.purpose,
    )
    properties = license.license_type.surface_schema.get("properties", {})
    fields = [(properties.get(n, {}), v) for n, v in license.surface.items()]
    return render(
        request,
        "licensing/authorized_license.html",
        {"consent": consent, "license": license, "fields": fields},
    )


@require_GET
def one_code(request: HttpRequest, token: str) -> HttpResponse:
    """一照一码: everyone can see which valid licences and permits a business holds."""
    organization, licenses = selectors.one_code_licenses(token=token)
    return render(
        request, "licensing/one_code.html", {"organization": organization, "licenses": licenses}
    )


def _pdf_response(pdf: bytes, filename: str) -> HttpResponse:
    response = HttpResponse(pdf, content_type="application/pdf")
    response["Content-Disposition"] = f"attachment; filename*=UTF-8''{quote(filename)}"
    return response


@login_required
@require_GET
def license_pdf(request: HttpRequest, pk: int) -> HttpResponse:
    """The printable license (下载打印): its offline code lasts as long as the license."""
    license = selectors.license_for_user(user=request.user, pk=pk)  # type: ignore[arg-type]
    text = selectors.license_offline_qr(license=license, lifetime=None)
    audit_record(
        action="license.print",
        actor=request.user,
        target=license,
        subject=services.holder_subject(license),
    )
    return _pdf_response(
        printing.license_pdf(license=license, qr_text=text),
        f"{license.license_type.name}-{license.number}.pdf",
    )


@login_required
@require_GET
def copy_pdf(request: HttpRequest, pk: int) -> HttpResponse:
    """A copy on paper: watermarked with its purpose and expiry, with both codes."""
    copy = selectors.copy_for_user(user=request.user, pk=pk)  # type: ignore[arg-type]
    text = selectors.license_offline_qr(license=copy.license, copy=copy)
    online_url = request.build_absolute_uri(reverse("licensing:online", args=[copy.token]))
    watermark = printing.CopyWatermark(
        purpose=copy.purpose, expires_on=timezone.localdate(copy.expires_at)
    )
    pdf = printing.license_pdf(
        license=copy.license, qr_text=text, copy=watermark, online_url=online_url
    )
    return _pdf_response(pdf, f"{copy.license.license_type.name}-副本-{copy.purpose}.pdf")
