"""The detail pages (convention, cost base, statement) print as a document: no menu, no button,
no form, every table whole within the paper's width, and a line saying what was printed, when
and by whom. Printed by Chromium itself (print media, then a real PDF looked at as text)."""

import io
import re

import pypdfium2
import pytest

from costing import statements
from tests.conftest import SCREENSHOTS, browser_log_in, screenshot
from tests.costing.conftest import cost_base

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
]

# An A4 sheet's printable width at 96 px per inch, less 2 × 12 mm of margin.
A4_PRINTABLE_WIDTH = 703


def printed_text(page, name: str) -> str:
    """The page as Chromium prints it to PDF (A4), as text; the PDF is kept beside the
    screenshots for a person to look at."""
    pdf = page.pdf(format="A4", print_background=True)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    (SCREENSHOTS / f"print-{name}.pdf").write_bytes(pdf)
    document = pypdfium2.PdfDocument(io.BytesIO(pdf))
    return "\n".join(page.get_textpage().get_text_range() for page in document)


def visible_controls(page) -> list[str]:
    """Buttons, form fields and navigation a person would see on the printed sheet."""
    return page.evaluate(
        """() => [...document.querySelectorAll(
              'button, input:not([type=hidden]), select, textarea, a.btn, nav, header, footer'
           )].filter((el) => el.checkVisibility()).map(
              (el) => el.tagName + ' ' + (el.innerText || el.name || '').trim().slice(0, 40))"""
    )


def clipped_tables(page) -> list[str]:
    """Tables wider than their box (cut on paper) or than the sheet."""
    return page.evaluate(
        """(width) => [...document.querySelectorAll('main table')].filter(
              (table) => table.scrollWidth > width
                 || table.parentElement.scrollWidth > table.parentElement.clientWidth
           ).map((table) => table.innerText.slice(0, 40))""",
        A4_PRINTABLE_WIDTH,
    )


@pytest.fixture
def printed_pages(live_server, page, billed, personas, flushable_statements):
    base = cost_base(billed.service)
    draft = statements.statements_prepare(2026)[0]
    return {
        "convention": f"/conventions/{billed.convention.reference}/",
        "base": f"/couts/base/{base.pk}/",
        "etat": f"/couts/etat/{draft.pk}/",
    }


@pytest.mark.parametrize("name", ["convention", "base", "etat"])
def test_a_detail_page_prints_as_a_document_without_controls(
    live_server, page, printed_pages, name
):
    browser_log_in(page, live_server, "gestionnaire" if name == "convention" else "finances")
    page.goto(live_server.url + printed_pages[name])
    on_screen = page.locator("main h1").inner_text()
    assert visible_controls(page), "the screen shows its controls"

    page.set_viewport_size({"width": A4_PRINTABLE_WIDTH, "height": 1000})
    page.emulate_media(media="print")
    assert visible_controls(page) == []
    assert clipped_tables(page) == []
    assert page.evaluate("() => document.documentElement.scrollWidth") <= A4_PRINTABLE_WIDTH
    footer = page.locator("[data-print-footer]")
    assert footer.is_visible()
    assert re.search(r"Édité le \d{2}/\d{2}/\d{4} à \d{2}:\d{2}", footer.inner_text())
    assert printed_pages[name] in footer.inner_text()
    screenshot(page, f"print-{name}")

    text = printed_text(page, name)
    assert on_screen.split(" ")[0] in text
    assert re.search(r"Page 1 / \d", text), "each sheet is numbered"
    for control in ("Se déconnecter", "Modifier", "Émettre", "Aller au contenu"):
        assert control not in text


def test_the_screen_does_not_show_the_printed_line(live_server, page, printed_pages):
    browser_log_in(page, live_server, "finances")
    page.goto(live_server.url + printed_pages["etat"])
    assert not page.locator("[data-print-footer]").is_visible()
