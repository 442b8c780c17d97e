"""The JSON API under /api/v1: one decorator declares a route's roles, body and response
models, and the same declaration feeds the OpenAPI 3.1 document.

    api = ApiRouter("accounts")

    @api.post("/users/me/tokens", summary="Create an access token", roles=ANY_USER,
              body=TokenCreate, response=TokenCreated, status=201)
    async def create_token(request, body: TokenCreate) -> TokenCreated: ...
"""

from __future__ import annotations

import inspect
import json
import re
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, TypeAdapter
from pydantic import ValidationError as PydanticValidationError
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from caretrack.core import validation as bounds
from caretrack.core.errors import CareTrackError, ValidationError
from caretrack.http.bodies import read_limited
from caretrack.http.guard import require_user

PREFIX = "/api/v1"
PUBLIC: frozenset[str] = frozenset()
MAX_JSON_BODY = 256 * 1024
MAX_FIELD_ERRORS = 20

Handler = Callable[..., Awaitable[Any]]


@dataclass
class Operation:
    method: str
    path: str
    summary: str
    roles: frozenset[str] | None
    body: type[BaseModel] | None
    response: Any
    status: int
    tag: str
    query: type[BaseModel] | None = None
    description: str = ""
    errors: tuple[int, ...] = ()


@dataclass
class ApiRouter:
    tag: str
    operations: list[Operation] = field(default_factory=list)
    routes: list[Route] = field(default_factory=list)

    def route(
        self,
        method: str,
        path: str,
        *,
        summary: str,
        roles: Iterable[str] | None,
        body: type[BaseModel] | None = None,
        query: type[BaseModel] | None = None,
        response: Any = None,
        status: int = 200,
        description: str = "",
        errors: tuple[int, ...] = (),
    ) -> Callable[[Handler], Handler]:
        """`roles=None` means any signed-in user, `PUBLIC` means anyone."""
        allowed = None if roles is None else frozenset(roles)
        op = Operation(method, PREFIX + path, summary, allowed, body, response, status, self.tag,
                       query, description, errors)
        adapter = TypeAdapter(response) if response is not None else None

        def decorate(handler: Handler) -> Handler:
            wants_user = "user" in inspect.signature(handler).parameters

            async def endpoint(request: Request) -> Response:
                kwargs: dict[str, Any] = {}
                if allowed != PUBLIC:
                    user = await require_user(request, allowed)
                    if wants_user:
                        kwargs["user"] = user
                if body is not None:
                    kwargs["body"] = await parse_body(request, body)
                if query is not None:
                    kwargs["query"] = parse_query(query, request)
                result = await handler(request, **kwargs)
                # Cache-Control: no-store is added to every API answer by SecurityHeadersMiddleware.
                if isinstance(result, Response):
                    return result
                if adapter is None:
                    return Response(status_code=status)
                return JSONResponse(adapter.dump_python(result, mode="json"), status_code=status)

            endpoint.__name__ = handler.__name__
            self.routes.append(Route(op.path, endpoint, methods=[method]))
            self.operations.append(op)
            return handler

        return decorate

    def get(self, path: str, **kw: Any) -> Callable[[Handler], Handler]:
        return self.route("GET", path, **kw)

    def post(self, path: str, **kw: Any) -> Callable[[Handler], Handler]:
        return self.route("POST", path, **kw)

    def put(self, path: str, **kw: Any) -> Callable[[Handler], Handler]:
        return self.route("PUT", path, **kw)

    def patch(self, path: str, **kw: Any) -> Callable[[Handler], Handler]:
        return self.route("PATCH", path, **kw)

    def delete(self, path: str, **kw: Any) -> Callable[[Handler], Handler]:
        return self.route("DELETE", path, **kw)


async def parse_body(request: Request, model: type[BaseModel]) -> BaseModel:
    content_type = request.headers.get("content-type", "").split(";")[0].strip()
    if content_type != "application/json":
        raise CareTrackError(
            f"Expected a JSON body (Content-Type: application/json), got '{content_type or 'none'}'.",
            code="unsupported_media_type",
            status_code=415,
        )
    raw = await read_limited(request, MAX_JSON_BODY, "The JSON body")
    return parse_model(model, decode_json(raw), "field")


def decode_json(raw: bytes) -> Any:
    """The body as JSON, or a 400 that says what is wrong with it."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise CareTrackError(f"The body is not UTF-8: byte 0x{raw[exc.start]:02X} at position {exc.start} "
                             "cannot start or continue a character; send JSON encoded as UTF-8.",
                             code="bad_json") from None
    try:
        return json.loads(text or "null")
    except json.JSONDecodeError as exc:
        raise CareTrackError(f"The body is not valid JSON: {exc.msg} at position {exc.pos}.", code="bad_json") from None
    except ValueError as exc:  # a number with more digits than Python converts (sys.int_info)
        raise CareTrackError(f"The body is not usable JSON: {exc}.", code="bad_json") from None
    except RecursionError:
        raise CareTrackError("The body is nested too deeply; send flatter JSON.", code="bad_json") from None


def parse_model(model: type[BaseModel], data: Any, what: str) -> BaseModel:
    """Validate input into `model`: a 422 with one entry per wrong field."""
    # PostgreSQL refuses NUL in text, and no field has a use for it: one rule for all input.
    problems = {_location(loc): bounds.NUL_MESSAGE for loc in bounds.nul_locations(data)}
    try:
        parsed = model.model_validate(data)
    except PydanticValidationError as exc:
        for error in exc.errors(include_url=False):
            problems.setdefault(_location(error["loc"]), error["msg"])
    if problems:
        raise validation_error(problems, what)
    return parsed


def parse_query(model: type[BaseModel], request: Request) -> BaseModel:
    """The query string as `model`; a parameter given twice is refused rather than half-read."""
    names = [name for name, _ in request.query_params.multi_items()]
    repeated = {name: "give this parameter once" for name in dict.fromkeys(names) if names.count(name) > 1}
    if repeated:
        raise validation_error(repeated, "query parameter")
    return parse_model(model, dict(request.query_params), "query parameter")


def validation_error(problems: dict[str, str], what: str = "field") -> ValidationError:
    """One `ValidationError` naming each wrong field once, in the message and in `fields`."""
    fields = [{"field": name, "message": message} for name, message in list(problems.items())[:MAX_FIELD_ERRORS]]
    message = "; ".join(f"{what} '{f['field']}': {f['message']}" for f in fields[:5])
    return ValidationError(message, fields=fields)


def _location(loc: tuple[str | int, ...]) -> str:
    return ".".join(str(p) for p in loc) or "body"


def openapi_document(routers: Iterable[ApiRouter], title: str, version: str, *, session_cookie: str) -> dict[str, Any]:
    """`session_cookie` is the name the app sets (it depends on HTTPS), so clients send the right one."""
    paths: dict[str, dict[str, Any]] = {}
    schemas: dict[str, Any] = {}
    schemas["Error"] = ERROR_SCHEMA

    def ref(model: Any) -> dict[str, Any]:
        schema = TypeAdapter(model).json_schema(ref_template="#/components/schemas/{model}")
        for name, definition in schema.pop("$defs", {}).items():
            schemas[name] = definition
        title = schema.get("title")
        if isinstance(model, type) and issubclass(model, BaseModel) and title:
            schemas[title] = schema
            return {"$ref": f"#/components/schemas/{title}"}
        return schema

    for router in routers:
        for op in router.operations:
            path = re.sub(r"{(\w+):\w+}", r"{\1}", op.path)
            item: dict[str, Any] = {
                "summary": op.summary,
                "operationId": op.method.lower() + "_" + re.sub(r"[^a-z0-9]+", "_", path.lower()).strip("_"),
                "tags": [op.tag],
                "responses": {},
            }
            if op.description:
                item["description"] = op.description
            if op.roles != PUBLIC:
                item["security"] = [{"session": []}, {"token": []}]
                roles = "any signed-in user" if op.roles is None else ", ".join(sorted(op.roles))
                item["description"] = (item.get("description", "") + f"\n\nAllowed: {roles}.").strip()
            parameters = [
                {"name": name, "in": "path", "required": True, "schema": dict(_PATH_SCHEMAS.get(conv, _STRING))}
                for name, conv in _path_params(op.path)
            ]
            if op.query is not None:
                query_schema = op.query.model_json_schema(ref_template="#/components/schemas/{model}")
                schemas.update(query_schema.pop("$defs", {}))
                required = set(query_schema.get("required", ()))
                for name, prop in query_schema.get("properties", {}).items():
                    parameters.append({"name": name, "in": "query", "required": name in required, "schema": prop})
            if parameters:
                item["parameters"] = parameters
            if op.body is not None:
                item["requestBody"] = {
                    "required": True,
                    "content": {"application/json": {"schema": ref(op.body)}},
                }
            if op.response is not None:
                item["responses"][str(op.status)] = {
                    "description": "Success",
                    "content": {"application/json": {"schema": ref(op.response)}},
                }
            else:
                item["responses"][str(op.status)] = {"description": "Success, no content"}
            codes = set(op.errors)
            if op.body is not None or op.query is not None:
                codes |= {400, 413, 415, 422} if op.body is not None else {422}
            if op.roles != PUBLIC:
                codes |= {401, 403}
            for code in sorted(codes):
                item["responses"][str(code)] = {
                    "description": "Error",
                    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
                }
            paths.setdefault(path, {})[op.method.lower()] = item
    return {
        "openapi": "3.1.0",
        "info": {"title": title, "version": version},
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {
                "session": {"type": "apiKey", "in": "cookie", "name": session_cookie},
                "token": {"type": "http", "scheme": "bearer"},
            },
        },
    }


ERROR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "message"],
            "properties": {
                "code": {"type": "string"},
                "message": {"type": "string"},
                "fields": {
                    "description": "On a 422: each wrong field once, by its dotted location in the body or query.",
                    "type": "array",
                    "items": {
                        "type": "object",
                        "required": ["field", "message"],
                        "properties": {"field": {"type": "string"}, "message": {"type": "string"}},
                    },
                },
            },
        }
    },
}
_STRING = {"type": "string"}
_PATH_SCHEMAS = {"id": bounds.ID_SCHEMA, "int": {"type": "integer", "minimum": 0}}


def _path_params(path: str) -> list[tuple[str, str]]:
    return [(m.partition(":")[0], m.partition(":")[2]) for m in re.findall(r"{([^}]+)}", path)]
