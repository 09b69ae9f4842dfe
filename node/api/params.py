"""Query parameters of the RPC's handlers, checked where they enter: a bad value is a 400
whose JSON error names the parameter and what it must be."""

from __future__ import annotations

import json

from aiohttp import web


def bad_request(message: str) -> web.HTTPBadRequest:
    return web.HTTPBadRequest(text=json.dumps({"error": message}), content_type="application/json")


def int_param(
    request: web.Request, name: str, default: int | None = None, lo: int = 0, hi: int = 2**63 - 1
) -> int:
    raw = request.query.get(name)
    if raw is None:
        if default is None:
            raise bad_request(f"query parameter {name!r} is required")
        return default
    try:
        value = int(raw)
    except ValueError:
        raise bad_request(f"{name} must be an integer") from None
    if not lo <= value <= hi:
        raise bad_request(f"{name} must be in [{lo}, {hi}]")
    return value
