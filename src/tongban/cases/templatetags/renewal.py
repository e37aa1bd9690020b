"""`{% expiry_marker license %}`: the 即将到期 marker of a license on 我的证照, with the
renewal link or the renewal case's state. A tag of the cases app, so the wallet page shows
renewal cases without the licensing app knowing about cases."""

from typing import Any

from django import template

from tongban.licensing.models import License

from ..expiry import expiry_marker as marker_for

register = template.Library()


@register.inclusion_tag("cases/_expiry_marker.html", takes_context=True)
def expiry_marker(context: dict[str, Any], license: License) -> dict[str, Any]:
    user = context["request"].user
    return {"marker": marker_for(license=license, user=user), "license": license}
