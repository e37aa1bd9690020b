"""Pages where a citizen asks for a proof (开具证明) generated from the issuing department's
data; the proof then lives in the wallet like any license."""

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_http_methods

from tongban.core.errors import TongbanError
from tongban.people.models import User

from . import proofs


class ProofForm(forms.Form):
    license_type = forms.CharField(widget=forms.HiddenInput, max_length=32)
    purpose = forms.CharField(
        label=gettext_lazy("What is it for? (e.g. 入学, 就业)"),
        max_length=proofs.PURPOSE_MAX,
        help_text=gettext_lazy("For example: applying for a job, school enrolment."),
    )


@login_required
@require_http_methods(["GET", "POST"])
def proof_list(request: HttpRequest) -> HttpResponse:
    """The proofs a citizen can get online, each with its own form; a refusal is shown on
    the form it came from."""
    user: User = request.user  # type: ignore[assignment]
    proofs.proof_holder(user)  # only citizens: anyone else gets the 403 page
    offers = proofs.proofs_offered()
    submitted, status = None, 200
    if request.method == "POST":
        submitted, status = ProofForm(request.POST), 422
        if submitted.is_valid():
            started = timezone.now()
            try:
                license = proofs.proof_issue(
                    license_type_code=submitted.cleaned_data["license_type"],
                    purpose=submitted.cleaned_data["purpose"],
                    actor=user,
                )
            except TongbanError as exc:
                field = "purpose" if exc.code == proofs.ProofPurposeInvalid.code else None
                submitted.add_error(field, f"{exc.message} ({exc.code})")
                status = exc.status
            else:
                if license.issued_at < started:
                    messages.info(
                        request,
                        _("You were issued this proof for this purpose today already; here it is."),
                    )
                else:
                    messages.success(request, _("Your proof was issued and is in your wallet."))
                return redirect("licensing:license", pk=license.pk)
    cards = []
    for offer in offers:
        code = offer.license_type.code
        mine = submitted is not None and submitted.data.get("license_type") == code
        form = submitted if mine else ProofForm(initial={"license_type": code})
        # Each card's inputs get their own ids, so labels point at the right field.
        form.auto_id = f"id_{code}_%s"  # type: ignore[union-attr]
        cards.append((offer, form))
    unmatched = submitted is not None and not any(form is submitted for _o, form in cards)
    return render(
        request,
        "exchange/proofs.html",
        {"cards": cards, "unmatched": submitted if unmatched else None},
        status=status,
    )
