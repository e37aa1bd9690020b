"""A citizen opens 我的证照, shows a QR, makes a copy for one purpose, and the verifier page
accepts the copy — and rejects it once the license is revoked."""

import io

import pytest
from django.core.management import call_command

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_show_copy_and_verify_on_a_phone(live_server, phone_page, axe_violations, screenshot):
    call_command(
        "seed-demo", residents=10, organizations=2, stdout=io.StringIO(), stderr=io.StringIO()
    )
    from tongban.licensing.models import License
    from tongban.licensing.services import license_status_set
    from tongban.people.models import User

    page = phone_page
    # Given the demo citizen, signed in
    page.goto(live_server.url + "/account/login/?next=/wallet/")
    page.fill("#id_username", "citizen")
    page.fill("#id_password", "Tongban-demo-2026")
    page.locator("form.form button").click()
    page.wait_for_url("**/wallet/")
    assert axe_violations(page) == []
    screenshot(page, "phone-wallet")

    # When they open a license, its QR code is shown
    page.locator(".license-card a").first.click()
    page.wait_for_selector(".qr svg")
    assert axe_violations(page) == []
    screenshot(page, "phone-license")

    # And they make a copy for renting a flat, showing one field, for a day
    page.get_by_role("link", name="出具限定用途的副本").click()
    page.fill("#id_purpose", "租房")
    page.fill("#id_days", "1")
    page.locator("input[name=disclose]").first.check()
    page.get_by_role("button", name="出具副本").click()
    page.wait_for_selector(".qr-pair")
    assert axe_violations(page) == []
    screenshot(page, "phone-copy")
    copy_text = page.locator("#qr-text").input_value()
    assert copy_text.startswith("TB1:")

    # Then the verifier page accepts the copy for that purpose
    page.goto(live_server.url + "/verify/")
    page.fill("#text", copy_text)
    page.fill("#purpose", "租房")
    page.get_by_role("button", name="核验", exact=True).click()
    page.wait_for_selector(".verdict")
    assert page.locator(".verdict-valid").count() == 1
    assert axe_violations(page) == []
    screenshot(page, "phone-verify-valid")

    # And once the issuing department revokes the license, it rejects the copy
    citizen = User.objects.get(username="citizen")
    license = License.objects.filter(holder_person=citizen.person, copies__isnull=False).get()
    staff = User.objects.filter(role="staff", department=license.issuer).first()
    license_status_set(license=license, status="revoked", reason="注销", actor=staff)
    page.fill("#text", copy_text)
    page.get_by_role("button", name="核验", exact=True).click()
    page.wait_for_selector(".verdict-invalid")
    assert "revoked" in page.locator(".verdict").inner_text()
    screenshot(page, "phone-verify-revoked")
