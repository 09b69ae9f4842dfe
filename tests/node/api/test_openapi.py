"""The OpenAPI document and the routes stay in step."""

from __future__ import annotations

import re
from typing import cast

from node.api.openapi import OPENAPI
from node.api.routes import make_app
from node.app import Node


def test_every_route_is_documented_and_every_documented_path_is_routed() -> None:
    app = make_app(cast(Node, None))
    routed = set()
    for resource in app.router.resources():
        path = resource.canonical
        if path == "/{tail}":
            continue  # the JSON 404 for everything else
        routed.add(re.sub(r"\{(\w+)(:[^}]*)?\}", r"{\1}", path))
    assert routed == set(OPENAPI["paths"])
