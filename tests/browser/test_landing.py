"""The whole chain: hypercorn serves the app, Chromium renders the landing page."""

import pytest

pytestmark = pytest.mark.browser


async def test_landing_page_renders_in_chromium(live_server, page):
    errors = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    response = await page.goto(live_server.url + "/")
    assert response.status == 200
    assert await page.title() == "Care, wherever it happens · CareTrack"
    heading = page.get_by_role("heading", level=1)
    assert await heading.inner_text() == "Care, wherever it happens"
    # the stylesheet loaded (no CDN): the brand colour is applied
    colour = await page.eval_on_selector(".brand", "el => getComputedStyle(el).color")
    assert colour == "rgb(11, 110, 99)"
    assert await page.get_by_role("link", name="Sign in").first.get_attribute("href") == "/login"
    assert errors == []
