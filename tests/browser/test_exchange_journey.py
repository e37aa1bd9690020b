"""A department clerk logs in with a one-time code and reads a resident's granted fields on
the query page; the resident then finds that read in 数据使用记录. A data administrator's
pages (review queue, statistics, credentials) pass the same checks."""

import datetime as dt
from typing import Any

import pytest
from django.utils import timezone, translation
from tests.browser.journeys import checked, log_in
from tests.exchange.factories import load_datasets, make_grant, put_rows
from tests.people.factories import (
    make_department,
    make_person,
    make_user,
    valid_resident_id,
)

from tongban.exchange import services

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

RID = valid_resident_id(birth=dt.date(1985, 5, 17), n=3)
ADDRESS = "演示市历下区泉城路1号"


def _world() -> dict[str, Any]:
    datasets = load_datasets("population", "minimum_living")
    put_rows(
        datasets["population"],
        {
            "resident_id": RID,
            "name": "李娜",
            "sex": "女",
            "birth_date": "1985-05-17",
            "ethnicity": "汉",
            "division_code": "370102",
            "address": ADDRESS,
            "registered_since": "2001-09-01",
            "alive": True,
        },
    )
    consumer = make_department(code="hrss", name="演示市人力资源和社会保障局")
    grant = make_grant(
        consumer=consumer, dataset=datasets["population"], fields=["name", "address"]
    )
    return {
        "grant": grant,
        "consumer": consumer,
        "staff": make_user(username="clerk", role="staff", department=consumer),
        "admin": make_user(username="dataadmin", role="data_admin"),
        "resident": make_user(
            username="lina", role="citizen", person=make_person(resident_id=RID, name="李娜")
        ),
    }


def test_a_clerk_reads_granted_fields_and_the_resident_sees_it(
    live_server, desktop_page, phone_page, axe_violations, console_errors, screenshot
):
    world = _world()
    base = live_server.url

    # Given a clerk of the consumer department, logged in with a one-time code
    page = desktop_page
    log_in(page, base, world["staff"], "/exchange/query/")
    checked(page, "desktop-exchange-query-choose", axe_violations, screenshot)

    # When they choose the grant and ask for the resident's name and address
    page.select_option("#grant", str(world["grant"].pk))
    page.locator("form.filter-form button").click()
    page.wait_for_selector("#id_query-subject")
    page.fill("#id_query-subject", RID)
    page.locator("button[name=action][value=query]").click()
    page.wait_for_selector(".result")

    # Then they see exactly the granted fields
    table = page.locator(".answer-table").inner_text()
    assert "李娜" in table and ADDRESS in table
    checked(page, "desktop-exchange-query-result", axe_violations, screenshot)
    page.goto(f"{base}/exchange/datasets/population/")
    checked(page, "desktop-exchange-dataset", axe_violations, screenshot)
    page.goto(f"{base}/exchange/")
    page.fill("#q", "人口")
    page.wait_for_url("**q=*")  # the htmx search pushes its URL
    assert page.locator("#results .dataset-card").count() == 1
    checked(page, "desktop-exchange-catalog", axe_violations, screenshot)
    assert console_errors(page) == []

    # And the same query page works on a phone
    phone = phone_page
    log_in(phone, base, world["staff"], "/exchange/query/", steps_ahead=1)
    phone.select_option("#grant", str(world["grant"].pk))
    phone.locator("form.filter-form button").click()
    phone.wait_for_selector("#id_query-subject")
    checked(phone, "phone-exchange-query", axe_violations, screenshot)
    phone.context.clear_cookies()

    # When the resident logs in on their phone and opens 数据使用记录
    log_in(phone, base, world["resident"], "/exchange/my/")
    record = phone.locator(".access").first.inner_text()
    with translation.override("zh-hans"):
        purpose = str(world["grant"].get_purpose_display())
    from tongban.audit.models import AuditEntry

    entry = AuditEntry.objects.get(action="exchange.query")
    when = timezone.localtime(entry.at).strftime("%Y-%m-%d %H:%M")
    # Then they see who read what, when and why
    for text in ("演示市人力资源和社会保障局", "人口基础信息", "姓名", "户籍地址", purpose, when):
        assert text in record, text
    checked(phone, "phone-exchange-my", axe_violations, screenshot)

    # And the page holds up in elder mode and on a desktop
    phone.locator("button[name=on][value='1']").click()
    phone.wait_for_selector("body.elder")
    checked(phone, "phone-exchange-my-elder", axe_violations, screenshot)
    phone.goto(f"{base}/exchange/my/consents/")
    phone.select_option("#id_dataset", "minimum_living")
    phone.select_option("#id_department", "hrss")
    phone.locator(".stack-form button").click()
    phone.wait_for_selector(".grant-list form")  # the new authorization, with its withdraw
    checked(phone, "phone-exchange-consents-elder", axe_violations, screenshot)
    assert console_errors(phone) == []


def test_data_administrator_pages(
    live_server, desktop_page, phone_page, axe_violations, console_errors, screenshot
):
    world = _world()
    base = live_server.url
    make_grant(
        consumer=make_department(code="tax", name="演示市税务局"),
        dataset=world["grant"].dataset,
        fields=["name", "birth_date"],
        status="requested",
    )
    services.data_query(
        caller=services.Caller(world["consumer"], "system:hrss", 100),
        dataset_code="population",
        subject=RID,
        fields=["name"],
        purpose="service_handling",
        legal_basis="《社会救助暂行办法》",
    )
    page = desktop_page
    log_in(page, base, world["admin"], "/exchange/grants/")
    checked(page, "desktop-exchange-grants", axe_violations, screenshot)
    page.locator(".grant-list a").first.click()
    page.wait_for_selector("#approve-title")
    checked(page, "desktop-exchange-grant-review", axe_violations, screenshot)
    page.goto(f"{base}/exchange/stats/")
    checked(page, "desktop-exchange-stats", axe_violations, screenshot)
    page.goto(f"{base}/exchange/credentials/")
    page.select_option("#id_department", "hrss")
    page.fill("#id_name", "社保业务系统")
    page.locator(".stack-form button").click()
    page.wait_for_selector("#token")
    assert page.input_value("#token").startswith("tbx_")
    checked(page, "desktop-exchange-credential-token", axe_violations, screenshot)
    page.goto(f"{base}/exchange/credentials/")
    checked(page, "desktop-exchange-credentials", axe_violations, screenshot)
    assert console_errors(page) == []

    phone = phone_page
    log_in(phone, base, world["admin"], "/exchange/stats/", steps_ahead=1)
    checked(phone, "phone-exchange-stats", axe_violations, screenshot)
    phone.goto(f"{base}/exchange/grants/")
    checked(phone, "phone-exchange-grants", axe_violations, screenshot)
    assert console_errors(phone) == []
