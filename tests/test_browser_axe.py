"""Every public page passes axe-core's checks (WCAG 2.x A and AA) on a phone and a desktop."""

from pathlib import Path

import pytest

from tests.test_browser_layout import pages, site  # noqa: F401 - the same pages and data

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

AXE = Path(__file__).parent / "vendor" / "axe-core" / "axe.min.js"
# axe's default set: WCAG 2.0-2.2 A and AA, and its best practices.
RUN = """async () => {
  const result = await axe.run(document);
  return result.violations.map(v => ({
    id: v.id, help: v.help, nodes: v.nodes.slice(0, 3).map(n => n.target.join(" ")),
  }));
}"""


@pytest.mark.parametrize("width", [390, 1366])
def test_every_public_page_has_no_axe_violations(browser, live_server, site, width):  # noqa: F811
    # Our CSP forbids inline scripts, which is how Playwright adds one: this browser
    # context alone ignores the CSP, so that axe can run.
    context = browser.new_context(
        base_url=live_server.url, viewport={"width": width, "height": 900}, bypass_csp=True
    )
    page = context.new_page()
    found = []
    for url in pages(site):
        page.goto(url)
        page.add_script_tag(path=str(AXE))
        for violation in page.evaluate(RUN):
            found.append(f"{url}: {violation['id']} ({violation['help']}) at {violation['nodes']}")
    # The states a script adds: the line and Undo after an answer, the grid's zoom dialog.
    page.goto("/validate")
    page.locator("#task-image[data-shown]").wait_for()
    page.keyboard.press("y")
    page.locator("#answered:not([hidden])").wait_for()
    page.add_script_tag(path=str(AXE))
    found += [f"answered: {v['id']} ({v['help']}) at {v['nodes']}" for v in page.evaluate(RUN)]
    page.goto("/validate/grid?label=dog")
    page.locator(".grid-zoom").first.click()
    page.locator("dialog.zoom").wait_for(state="visible")
    page.add_script_tag(path=str(AXE))
    found += [f"grid zoom: {v['id']} ({v['help']}) at {v['nodes']}" for v in page.evaluate(RUN)]
    context.close()
    assert not found, "axe found:\n" + "\n".join(found)
