"""The audit explorer's page, served at ``/ui/``: static files shipped in the package
(``node/api/ui/``: HTML, ES modules, CSS; no build step) over the JSON reads of
``node.api.explorer`` and the rest of the RPC.

Only the files found in the folder when the app is made are served, by exact name: no
path from a request ever reaches the file system. Every answer carries a Content
Security Policy that allows scripts, styles and requests from this origin only and no
inline script, so a string from the chain that slipped into the page as markup still
could not run; the page itself renders chain data as text (``textContent``), never as
HTML.
"""

from __future__ import annotations

from pathlib import Path
from typing import Final

from aiohttp import web

UI_DIR: Final = Path(__file__).with_name("ui")
PATH: Final = "/ui/"
CONTENT_TYPES: Final = {
    ".html": "text/html",
    ".js": "text/javascript",
    ".css": "text/css",
    ".svg": "image/svg+xml",
    ".txt": "text/plain",
}
SECURITY_HEADERS: Final = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}


def load_files(folder: Path = UI_DIR) -> dict[str, tuple[bytes, str]]:
    """The servable files of ``folder`` by name: (content, content type)."""
    files: dict[str, tuple[bytes, str]] = {}
    for path in sorted(folder.iterdir()):
        ctype = CONTENT_TYPES.get(path.suffix)
        if path.is_file() and ctype is not None:
            files[path.name] = (path.read_bytes(), ctype)
    return files


def add_routes(app: web.Application) -> None:
    """Serve the explorer on ``app`` (before its catch-all route)."""
    files = load_files()

    async def redirect(request: web.Request) -> web.Response:
        raise web.HTTPFound(PATH)

    async def serve(request: web.Request) -> web.Response:
        name = request.match_info["name"] or "index.html"
        found = files.get(name)
        if found is None:
            return web.json_response(
                {"error": f"no explorer file {name[:80]!r}"}, status=404, headers=SECURITY_HEADERS
            )
        body, ctype = found
        return web.Response(
            body=body, content_type=ctype, charset="utf-8", headers=SECURITY_HEADERS
        )

    app.router.add_get("/ui", redirect)
    app.router.add_get(PATH + "{name:[A-Za-z0-9_.-]*}", serve)
