"""One LMDB read transaction a request: ``open_view`` opens it the first time a query
needs it, so a long scan streams from LMDB instead of being copied into memory first;
the routes' middleware calls ``close_view`` when the request ends, however it ends."""

from __future__ import annotations

from typing import Final

from aiohttp import web

from node.api.service import NodeService
from storage.lmdb_store import LmdbSnapshot

VIEW: Final = web.RequestKey("read_view", LmdbSnapshot)


def open_view(request: web.Request, node: NodeService) -> LmdbSnapshot:
    """The request's read transaction (opened on the calling thread)."""
    view = node.store.snapshot()
    request[VIEW] = view
    return view


def close_view(request: web.Request) -> None:
    view = request.get(VIEW)
    if view is not None:
        view.close()
