"""Forms check the shape of what the login pages receive; the services check the rules."""

from django import forms
from django.utils.translation import gettext_lazy as _


class LoginForm(forms.Form):
    username = forms.CharField(label=_("Username"), max_length=150)
    password = forms.CharField(label=_("Password"), max_length=4096, strip=False)
    otp_token = forms.CharField(label=_("One-time code"), max_length=16, required=False)


class TotpConfirmForm(forms.Form):
    otp_token = forms.CharField(label=_("One-time code"), max_length=16)
