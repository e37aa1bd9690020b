"""Online applications in a real browser: the demo citizen applies for a certificate of
residence without uploading anything, gets it at once from the instant-approval rules and
has its QR accepted on the verification page; a department clerk accepts a case, asks for a
supplement that the applicant answers on their phone, and approves it, which puts the
license in the applicant's wallet; a family member applies for an elderly resident under
her mandate, and window staff find her. Every page passes axe-core without console errors."""

import io

import pytest
from django.core.management import call_command
from playwright.sync_api import Page
from tests.browser.journeys import checked, log_in
from tests.cases.factories import make_case, make_item
from tests.licensing.factories import make_office
from tests.people.factories import (
    make_person,
    make_user,
)

from tongban.cases.models import Case, Mandate
from tongban.licensing.models import License
from tongban.people.models import Department

# 居住证明开具: the rules issue the proof at once when the population register shows the
# applicant living in the city (cases/rules.yaml).
RESIDENCE_PROOF = "11370100004188063L-001106104000-01"
DEMO_PASSWORD = "Tongban-demo-2026"

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def _step(page: Page, action: str) -> None:
    """Press the button of one workbench step and wait for the page it leads to."""
    with page.expect_navigation():
        page.locator(f"form[action$='/{action}/'] button").click()


def test_the_demo_citizen_gets_a_certificate_at_once_and_it_verifies(
    live_server, phone_page, desktop_page, axe_violations, console_errors, screenshot
):
    call_command(
        "seed-demo", residents=10, organizations=2, stdout=io.StringIO(), stderr=io.StringIO()
    )
    base = live_server.url
    page = phone_page

    # Given the demo citizen, signed in, on the service guide
    page.goto(f"{base}/account/login/?next=/items/{RESIDENCE_PROOF}/")
    page.fill("#id_username", "citizen")
    page.fill("#id_password", DEMO_PASSWORD)
    page.locator("form.form button").click()
    page.wait_for_url(f"**/items/{RESIDENCE_PROOF}/")

    # When they start the application: every material is fetched, nothing to upload
    page.locator(f"a[href='/cases/apply/{RESIDENCE_PROOF}/']").click()
    page.wait_for_selector(".apply-form")
    assert page.locator(".apply-form input[type=file]").count() == 0
    assert page.locator(".instant-note").count() == 1
    checked(page, "phone-cases-apply-instant", axe_violations, screenshot)

    # and state what the certificate is for, and submit
    page.fill("#id_stated-purpose", "租房备案")
    with page.expect_navigation():
        page.locator(".apply-submit button").click()

    # Then the decision and the certificate are there at once
    case = Case.objects.filter(submitted_by__username="citizen").order_by("-pk").first()
    assert page.url.endswith(f"/cases/{case.pk}/")
    assert case.state == Case.State.COMPLETED and case.decision == Case.Decision.APPROVED
    assert case.materials_uploaded == 0 and case.materials_fetched >= 1
    assert page.locator(".case-result").count() == 1
    checked(page, "phone-cases-instant-approved", axe_violations, screenshot)

    # and its QR code, shown from the wallet, is accepted on the verification page
    page.locator(f".case-result a[href='/wallet/{case.result_license.pk}/']").click()
    page.wait_for_selector(".qr svg")
    qr_text = page.locator("#qr-text").input_value()
    assert qr_text.startswith("TB1:")
    page.goto(f"{base}/verify/")
    page.fill("#text", qr_text)
    page.locator(".verify-form button.btn-primary").click()
    page.wait_for_selector(".verdict")
    assert page.locator(".verdict-valid").count() == 1
    license = License.objects.select_related("license_type").get(pk=case.result_license.pk)
    verdict = page.locator(".verdict").inner_text()
    assert license.holder_person.masked_id in verdict and license.license_type.name in verdict
    checked(page, "phone-cases-instant-verified", axe_violations, screenshot)
    assert console_errors(page) == []

    # And the application page holds up on a desktop
    desktop = desktop_page
    desktop.goto(f"{base}/account/login/?next=/cases/apply/{RESIDENCE_PROOF}/")
    desktop.fill("#id_username", "citizen")
    desktop.fill("#id_password", DEMO_PASSWORD)
    desktop.locator("form.form button").click()
    desktop.wait_for_selector(".apply-form")
    checked(desktop, "desktop-cases-apply-instant", axe_violations, screenshot)
    desktop.goto(f"{base}/cases/")
    checked(desktop, "desktop-cases-my", axe_violations, screenshot)
    assert console_errors(desktop) == []


def test_staff_accept_ask_for_a_supplement_and_approve(
    live_server, desktop_page, phone_page, axe_violations, console_errors, screenshot
):
    office = make_office()
    item = make_item(office)
    person = make_person(name="李娜")
    citizen = make_user(username="lina", role="citizen", person=person)
    case = make_case(item, applicant=person, actor=citizen)
    base = live_server.url

    # Given the clerk, logged in with a one-time code, on the department's queue
    page = desktop_page
    log_in(page, base, office.staff, "/cases/queue/")
    assert page.locator(".queue-table tbody tr").count() == 1
    checked(page, "desktop-cases-queue", axe_violations, screenshot)

    # When they open the case, accept it, start the review and ask for a supplement
    page.locator(".queue-table a").first.click()
    page.wait_for_selector("#accept-title")
    assert person.masked_id in page.locator(".facts").first.inner_text()
    checked(page, "desktop-cases-staff-submitted", axe_violations, screenshot)
    _step(page, "accept")
    _step(page, "review")
    page.fill("#id_supplement-note", "请补充房屋租赁合同")
    _step(page, "supplement_request")
    assert Case.objects.get(pk=case.pk).state == Case.State.SUPPLEMENT_REQUESTED
    checked(page, "desktop-cases-staff-supplement", axe_violations, screenshot)
    assert console_errors(page) == []

    # Then the applicant sees the request on their phone and answers it
    phone = phone_page
    log_in(phone, base, citizen, "/cases/")
    checked(phone, "phone-cases-my", axe_violations, screenshot)
    phone.locator(".case-card a").first.click()
    phone.wait_for_selector("#answer-title")
    assert "请补充房屋租赁合同" in phone.locator(".supplement-note").inner_text()
    checked(phone, "phone-cases-supplement", axe_violations, screenshot)
    phone.fill("#id_supplement-note", "租赁合同已上传")
    with phone.expect_navigation():
        phone.locator("form[action$='/supplement/'] button").click()
    assert Case.objects.get(pk=case.pk).state == Case.State.IN_REVIEW

    # And the clerk approves: the license is issued under the department's seal
    page.reload()
    assert "租赁合同已上传" in page.locator(".timeline").inner_text()
    # the decision form shows the license details the applicant stated, to complete or correct
    assert page.locator("#id_decide-surface__address").input_value() == "演示市历下区龙奥北路8号"
    checked(page, "desktop-cases-staff-review", axe_violations, screenshot)
    page.locator("input[name=decide-decision][value=approved]").check()
    _step(page, "decide")
    checked(page, "desktop-cases-staff-decided", axe_violations, screenshot)
    _step(page, "complete")
    case.refresh_from_db()
    assert case.state == Case.State.COMPLETED and case.result_license is not None

    # The queue filters by state in place (htmx) and fits a phone
    page.goto(f"{base}/cases/queue/")
    page.set_viewport_size({"width": 390, "height": 844})
    page.select_option("#id_state", "completed")
    page.wait_for_url("**state=completed*")
    page.wait_for_selector(".queue-table tbody tr")
    checked(page, "phone-cases-queue-completed", axe_violations, screenshot)
    assert console_errors(page) == []

    # The applicant finds the license linked from the case and rates the service
    phone.reload()
    phone.locator("input[name=evaluation-level][value='5']").check()
    with phone.expect_navigation():
        phone.locator("form[action$='/evaluate/'] button").click()
    checked(phone, "phone-cases-completed", axe_violations, screenshot)
    phone.locator(f"a[href='/wallet/{case.result_license.pk}/']").click()
    phone.wait_for_selector(".qr svg")
    phone.go_back()
    phone.locator("button[name=on][value='1']").click()
    phone.wait_for_selector("body.elder")
    checked(phone, "phone-cases-completed-elder", axe_violations, screenshot)
    assert console_errors(phone) == []


def test_a_family_member_applies_for_an_elderly_resident_under_her_mandate(
    live_server, phone_page, desktop_page, axe_violations, console_errors, screenshot
):
    call_command(
        "seed-demo", residents=60, organizations=4, stdout=io.StringIO(), stderr=io.StringIO()
    )
    base = live_server.url
    mandate = Mandate.objects.select_related("principal").get(agent__accounts__username="citizen")
    elder = mandate.principal
    page = phone_page

    # Given the demo citizen, whom an elderly resident authorized at the window
    page.goto(f"{base}/account/login/?next=/cases/mandates/held/")
    page.fill("#id_username", "citizen")
    page.fill("#id_password", DEMO_PASSWORD)
    page.locator("form.form button").click()
    page.wait_for_url("**/cases/mandates/held/")
    assert elder.name in page.locator("main").inner_text()
    checked(page, "phone-cases-mandates-held", axe_violations, screenshot)

    # When they choose a service for her, the form says whom it is for
    page.select_option(f"#id_m{mandate.pk}-item", RESIDENCE_PROOF)
    with page.expect_navigation():
        page.locator(f"form[action='/cases/mandates/held/{mandate.pk}/apply/'] button").click()
    page.wait_for_selector(".apply-form")
    assert elder.name in page.locator(".on-behalf").inner_text()
    checked(page, "phone-cases-apply-for-elder", axe_violations, screenshot)
    page.fill("#id_stated-purpose", "养老金资格认证")
    with page.expect_navigation():
        page.locator(".apply-submit button").click()

    # Then the case is hers, submitted by them under the mandate
    case = Case.objects.filter(submitted_by__username="citizen").order_by("-pk").first()
    assert page.url.endswith(f"/cases/{case.pk}/")
    assert (case.applicant_person, case.submission.mandate) == (elder, mandate)
    page.goto(f"{base}/cases/")
    assert elder.name in page.locator(".on-behalf-line").first.inner_text()
    page.goto(f"{base}/cases/mandates/")
    checked(page, "phone-cases-mandates", axe_violations, screenshot)
    page.locator("button[name=on][value='1']").click()  # elder mode
    page.wait_for_selector("body.elder")
    checked(page, "phone-cases-mandates-elder-mode", axe_violations, screenshot)
    assert console_errors(page) == []

    # And window staff find her by ID number and name on a desktop
    desktop = desktop_page
    clerk = make_user(role="staff", department=Department.objects.get(code="service_center"))
    log_in(desktop, base, clerk, "/cases/window/")
    desktop.fill("#id_find-resident_id", elder.resident_id)
    desktop.fill("#id_find-name", elder.name)
    with desktop.expect_navigation():
        desktop.locator("form:has(input[value=find]) button").click()
    assert elder.name in desktop.locator("#person-title").inner_text()
    checked(desktop, "desktop-cases-window", axe_violations, screenshot)
    assert console_errors(desktop) == []
