"""/metrics is not public: a bearer token when CARETRACK_METRICS_TOKEN is set; without one,
open outside production and not served in production."""

from __future__ import annotations

import httpx
import pytest
from asgi_lifespan import LifespanManager

from caretrack.core.settings import Settings, SettingsError
from caretrack.site.app import create_app
from tests.conftest import TEST_BASE_URL, base_settings

TOKEN = "metrics-token-0123456789abcdef"


async def test_with_a_token_only_its_bearer_reads_metrics(settings):
    app = create_app(settings.replace(metrics_token=TOKEN))
    async with LifespanManager(app), httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                                        base_url=TEST_BASE_URL) as client:
        assert (await client.get("/metrics")).status_code == 401
        assert (await client.get("/metrics", headers={"authorization": "Bearer wrong-token"})).status_code == 401
        assert (await client.get("/metrics", headers={"authorization": f"Basic {TOKEN}"})).status_code == 401
        scraped = await client.get("/metrics", headers={"authorization": f"Bearer {TOKEN}"})
        assert scraped.status_code == 200 and "caretrack_http_requests_total" in scraped.text
        assert scraped.headers["cache-control"] == "no-store"


async def test_production_without_a_token_serves_no_metrics():
    # No lifespan: the route answers before touching the database.
    app = create_app(base_settings(environment="production"))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=TEST_BASE_URL) as client:
        response = await client.get("/metrics")
    assert response.status_code == 404
    assert "CARETRACK_METRICS_TOKEN" in response.text and "caretrack_http_requests_total" not in response.text


def test_the_token_setting_is_read_and_checked():
    assert Settings.from_env({"CARETRACK_METRICS_TOKEN": TOKEN}).metrics_token == TOKEN
    assert Settings.from_env({}).metrics_token is None
    with pytest.raises(SettingsError, match="CARETRACK_METRICS_TOKEN"):
        Settings.from_env({"CARETRACK_METRICS_TOKEN": "short"})
