"""The app's foundation: health, readiness, metrics, errors, headers, OpenAPI."""

import pytest
from asgi_lifespan import LifespanManager

from caretrack.site.app import StartupError, create_app
from tests.conftest import base_settings


async def test_healthz_and_readyz(client):
    assert (await client.get("/healthz")).json() == {"status": "alive"}
    ready = await client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json()["checks"]["database"] == "ok"
    assert ready.json()["checks"]["migrations"] == "ok"


async def test_every_response_carries_a_request_id_and_security_headers(client):
    response = await client.get("/")
    assert response.status_code == 200
    assert len(response.headers["x-request-id"]) >= 8
    csp = response.headers["content-security-policy"]
    assert "frame-ancestors 'none'" in csp
    assert "unsafe-inline" not in csp
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["referrer-policy"] == "same-origin"
    assert "strict-transport-security" not in response.headers  # plain HTTP here


async def test_a_proxy_request_id_is_kept_only_when_well_formed(client):
    kept = await client.get("/healthz", headers={"x-request-id": "abcdef0123456789"})
    assert kept.headers["x-request-id"] == "abcdef0123456789"
    replaced = await client.get("/healthz", headers={"x-request-id": "bad\nvalue with spaces"})
    assert replaced.headers["x-request-id"] != "bad\nvalue with spaces"


async def test_errors_are_json_under_api_and_html_elsewhere(client):
    api = await client.get("/api/v1/no-such-thing")
    assert api.status_code == 404
    assert api.json() == {"error": {"code": "not_found", "message": "Not Found"}}
    page = await client.get("/no-such-page")
    assert page.status_code == 404
    assert page.headers["content-type"].startswith("text/html")
    assert "Page not found" in page.text


async def test_an_unhandled_error_is_a_clean_500_with_the_request_id(settings, caplog):
    from starlette.routing import Route

    app = create_app(settings)

    async def boom(request):
        raise RuntimeError("secret internals")

    app.router.routes.insert(0, Route("/api/v1/boom", boom))
    app.router.routes.insert(0, Route("/boom", boom))
    import httpx

    async with LifespanManager(app) as manager:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=manager.app, raise_app_exceptions=False),
                                     base_url="http://testserver") as client:
            api = await client.get("/api/v1/boom")
            page = await client.get("/boom")
    assert api.status_code == 500
    body = api.json()["error"]
    assert body["code"] == "internal_error"
    assert api.headers["x-request-id"] in body["message"]
    assert "secret internals" not in api.text and "Traceback" not in api.text
    assert page.status_code == 500 and "secret internals" not in page.text
    assert "Something went wrong" in page.text
    # The last-resort answers carry the security headers, and the API one is not stored.
    assert api.headers["cache-control"] == "no-store"
    assert "frame-ancestors 'none'" in page.headers["content-security-policy"]


async def test_metrics_count_requests_by_route_template(client):
    await client.get("/healthz")
    text = (await client.get("/metrics")).text
    assert 'caretrack_http_requests_total{method="GET",route="/healthz",status="200"}' in text
    assert "caretrack_http_request_duration_seconds_bucket" in text
    assert "caretrack_open_websockets" in text


async def test_openapi_document_is_3_1(client):
    document = (await client.get("/api/v1/openapi.json")).json()
    assert document["openapi"] == "3.1.0"
    assert document["info"]["title"] == "CareTrack API"


async def test_openapi_document_validates_and_names_the_session_cookie_set(client):
    from openapi_spec_validator import validate

    from tests.helpers import login, make_user

    document = (await client.get("/api/v1/openapi.json")).json()
    validate(document)  # a generated client would fail on a dangling $ref
    await make_user(email="cookie@example.org")
    signed_in = await login(client, "cookie@example.org")
    set_cookie = signed_in.headers["set-cookie"]
    assert set_cookie.startswith(document["components"]["securitySchemes"]["session"]["name"] + "=")
    ids = document["paths"]["/api/v1/appointments/{appointment_id}"]["get"]["parameters"][0]["schema"]
    assert ids == {"type": "integer", "minimum": 1, "maximum": 2147483647}


async def test_openapi_session_cookie_over_https_is_the_host_prefixed_one():
    import httpx

    app = create_app(base_settings(base_url="https://care.example.org"))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="https://care.example.org") as c:
        document = (await c.get("/api/v1/openapi.json")).json()
    assert document["components"]["securitySchemes"]["session"]["name"] == "__Host-caretrack_session"


async def test_api_answers_with_user_data_are_not_stored(client):
    from caretrack.accounts import service
    from caretrack.accounts.schemas import TokenCreate
    from tests.helpers import make_user

    user = await make_user(email="phi@example.org")
    _, secret = await service.do_create_access_token(user, TokenCreate(name="script"), None)
    bearer = {"authorization": f"Bearer {secret}"}
    for path in (f"/api/v1/users/{user.id}/profile", "/api/v1/me", "/api/v1/me/tokens"):
        response = await client.get(path, headers=bearer)
        assert response.status_code == 200, path
        assert response.headers["cache-control"] == "no-store", path


async def test_api_errors_and_signed_in_pages_are_not_stored_and_static_files_may_be(client):
    from caretrack.accounts import service
    from caretrack.accounts.schemas import TokenCreate
    from tests.helpers import login, make_user

    user = await make_user(email="errors@example.org")
    _, secret = await service.do_create_access_token(user, TokenCreate(name="script"), None)
    bearer = {"authorization": f"Bearer {secret}"}
    missing = await client.get("/api/v1/appointments/99999", headers=bearer)
    assert missing.status_code == 404 and "99999" in missing.text
    invalid = await client.post("/api/v1/holds", json={"doctor_id": "errors@example.org"}, headers=bearer)
    assert invalid.status_code == 422 and "doctor_id" in invalid.text
    anonymous = await client.get("/api/v1/me")
    assert anonymous.status_code == 401
    for response in (missing, invalid, anonymous):
        assert response.headers["cache-control"] == "no-store", response.text

    await login(client, "errors@example.org")
    page = await client.get("/account")
    assert page.status_code == 200 and page.headers["cache-control"] == "no-store"
    gone = await client.get("/no-such-page")
    assert gone.status_code == 404 and gone.headers["cache-control"] == "no-store"
    css = await client.get("/static/css/app.css")
    assert css.status_code == 200 and "cache-control" not in css.headers


async def test_static_files_are_served(client):
    css = await client.get("/static/css/app.css")
    assert css.status_code == 200 and "--brand" in css.text


async def test_every_script_module_and_what_it_imports_is_served_as_javascript(client):
    """The page scripts are ES modules without a build step: each file under static/js, and each
    module its `import ... from "..."` lines name (resolved as the browser does), must be served
    from /static with a JavaScript type, or the page's script silently fails to load."""
    import re
    from urllib.parse import urljoin

    from caretrack.http.templating import STATIC_DIR

    imports = re.compile(r"""^import\s+(?:[^"]*?\s+from\s+)?"([^"]+)";""", re.MULTILINE)
    scripts = sorted((STATIC_DIR / "js").rglob("*.js"))
    assert any(path.parent.name == "call" for path in scripts)
    for path in scripts:
        url = "/static/" + path.relative_to(STATIC_DIR).as_posix()
        source = await client.get(url)
        assert source.status_code == 200 and "javascript" in source.headers["content-type"], url
        for target in imports.findall(source.text):
            imported = await client.get(urljoin(url, target))
            assert imported.status_code == 200 and "javascript" in imported.headers["content-type"], (url, target)


async def test_app_refuses_to_serve_a_database_whose_migrations_are_behind(tmp_path):
    settings = base_settings(database_url=f"sqlite://{tmp_path / 'empty.sqlite3'}")
    with pytest.raises(StartupError, match="caretrack migrate"):
        async with LifespanManager(create_app(settings)):
            pass


async def test_app_refuses_to_start_without_its_redis(settings):
    with pytest.raises(StartupError, match="CARETRACK_REDIS_URL"):
        async with LifespanManager(create_app(settings.replace(redis_url="redis://127.0.0.1:1/0"))):
            pass


async def test_readyz_reports_redis(settings, redis_url):
    import httpx

    async with LifespanManager(create_app(settings.replace(redis_url=redis_url))) as manager:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=manager.app), base_url="http://testserver") as c:
            response = await c.get("/readyz")
    assert response.status_code == 200
    assert response.json()["checks"]["redis"] == "ok"
