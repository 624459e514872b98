"""The company card in real Chromium, in Swedish, on a narrow screen: a long label (Momsregistreringsnummer)
wraps inside its column instead of running under its value, and e-mail addresses and URLs break rather than
overflow the card, while ordinary values break only between words."""

from __future__ import annotations

from typing import Any

import pytest

from .factories import CompanyFactory, UserFactory
from .test_browser import browser, log_in  # noqa: F401  (the browser fixture)
from .test_sync_tab_browser import shot

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

OVERLAPS = """() => Array.from(document.querySelectorAll('.fields dt')).map((dt) => {
  const dd = dt.nextElementSibling, card = dt.closest('.card').getBoundingClientRect();
  const a = dt.getBoundingClientRect(), b = dd.getBoundingClientRect();
  return {label: dt.textContent, overlaps: a.right > b.left + 0.5 && a.top < b.bottom && b.top < a.bottom,
          labelOut: dt.scrollWidth > dt.clientWidth + 1, valueOut: b.right > card.right + 0.5 || dd.scrollWidth > dd.clientWidth + 1};
}).filter((row) => row.overlaps || row.labelOut || row.valueOut)"""


def test_labels_wrap_and_long_addresses_break_on_a_narrow_company_card(browser: Any, live_server: Any) -> None:  # noqa: F811
    company = CompanyFactory.create(
        name="Kortedala Bygg och Måleri AB",
        vat_no="SE556677889901",
        email="fakturor.och.leverantorsreskontra@kortedala-bygg-och-maleri.example",
        url="https://www.kortedala-bygg-och-maleri.example/om-oss/kontakta-oss/fakturering",
        street_address1="Långströmsgatan 1234 uppgång B våning 4",
    )
    UserFactory.create(username="anna", perms=["crm.view_company"])
    context = browser.new_context(base_url=live_server.url, locale="en-GB", viewport={"width": 760, "height": 1000})
    page = context.new_page()
    log_in(page, "anna", "secret-pass-123")
    context.add_cookies([{"name": "django_language", "value": "sv", "url": live_server.url}])
    page.goto(company.get_absolute_url())
    page.get_by_text("Momsregistreringsnummer").wait_for()
    shot(page, "company-card-narrow-swedish")
    assert page.evaluate(OVERLAPS) == []
    # An ordinary value breaks between words, not inside them.
    street = page.locator("dd", has_text="Långströmsgatan")
    assert street.evaluate("(dd) => getComputedStyle(dd).overflowWrap") == "break-word"
    assert page.locator("dd a", has_text="fakturor").evaluate("(a) => getComputedStyle(a).overflowWrap") == "anywhere"
    context.close()
