"""Pages: the holder's wallet (我的证照) with the offline QR (扫码亮证), and the public
verification page (核验) where anyone pastes or scans a license code."""

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils.safestring import mark_safe
from django.views.decorators.http import require_GET, require_http_methods

from tongban.audit.services import audit_record

from . import offline_qr, selectors, verification


@login_required
@require_GET
def wallet(request: HttpRequest) -> HttpResponse:
    licenses = selectors.licenses_for_user(user=request.user)  # type: ignore[arg-type]
    audit_record(action="license.wallet_read", actor=request.user, purpose="holder's own wallet")
    return render(request, "licensing/wallet.html", {"licenses": licenses})


@login_required
@require_GET
def license_detail(request: HttpRequest, pk: int) -> HttpResponse:
    license = selectors.license_for_user(user=request.user, pk=pk)  # type: ignore[arg-type]
    text = selectors.license_offline_qr(license=license)
    holder_code = selectors.license_holder_code(license)
    audit_record(
        action="license.read",
        actor=request.user,
        target=license,
        purpose="holder shows license",
        subject=("person" if license.holder_person_id else "organization", holder_code),
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
            # Both SVGs are generated here from our own data (escaped), never from input.
            "qr_svg": mark_safe(offline_qr.offline_qr_image(text).svg_inline(scale=3, border=2)),  # noqa: S308
            "seal_svg": mark_safe(license.seal.image_svg),  # noqa: S308
        },
    )


@require_http_methods(["GET", "POST"])
def verify(request: HttpRequest) -> HttpResponse:
    result = None
    text = request.POST.get("text", "")[:4400] if request.method == "POST" else ""
    if request.method == "POST":
        result = selectors.license_verify(text=text)
    return render(
        request,
        "licensing/verify.html",
        {
            "text": text,
            "result": result,
            "message": verification.REASON_MESSAGES[result.reason] if result else "",
        },
    )
