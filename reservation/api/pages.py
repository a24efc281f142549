"""The storefront and the operations page: the files of reservation/web, served as they are.

Plain HTML, CSS and JavaScript shipped in the package (no build step, no CDN): `/` lists the
products and holds them, `/checkout/success` and `/checkout/cancel` are where Stripe sends the
buyer back (reservation/checkout.py names them), and `/ops` shows a sale to the shop owner, who
types the admin token there. The pages call the JSON API like any other client. They are not
part of the API, so their routes stay out of /openapi.json (`include_in_schema=False`).
"""

from __future__ import annotations

import functools
import hashlib
from importlib import resources

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from domain import errors
from reservation.api.openapi import Handler

WEB = resources.files("reservation") / "web"
MEDIA_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".svg": "image/svg+xml",
}
# The pages load only their own files and call only this origin. Payment happens on Stripe's
# page, reached by a plain navigation. The session id in the success URL goes nowhere else.
HEADERS = {
    "Cache-Control": "no-cache",
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
        "img-src 'self' data:; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    ),
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
}


def _media_type(name: str) -> str | None:
    return next((kind for suffix, kind in MEDIA_TYPES.items() if name.endswith(suffix)), None)


@functools.cache
def assets() -> dict[str, tuple[bytes, str, str]]:
    """Every servable file of reservation/web: name -> (content, media type, ETag)."""
    found = {}
    for entry in WEB.iterdir():
        media_type = _media_type(entry.name)
        if media_type is not None and entry.is_file():
            content = entry.read_bytes()
            etag = '"' + hashlib.sha256(content).hexdigest()[:20] + '"'
            found[entry.name] = (content, media_type, etag)
    return found


def _serve(request: Request, name: str) -> Response:
    found = assets().get(name)
    if found is None:
        raise errors.NotFound("no such file", name=name)
    content, media_type, etag = found
    headers = {**HEADERS, "ETag": etag}
    if request.headers.get("if-none-match") == etag:
        return Response(status_code=304, headers=headers)
    return Response(content, media_type=media_type, headers=headers)


def page(name: str) -> Handler:
    async def serve_page(request: Request) -> Response:
        return _serve(request, name)

    serve_page.__name__ = f"page_{name.partition('.')[0]}"
    return serve_page


async def static_file(request: Request) -> Response:
    return _serve(request, request.path_params["name"])


PAGES = [
    Route("/", page("index.html"), methods=["GET"], include_in_schema=False),
    Route("/checkout/success", page("success.html"), methods=["GET"], include_in_schema=False),
    Route("/checkout/cancel", page("cancel.html"), methods=["GET"], include_in_schema=False),
    Route("/ops", page("ops.html"), methods=["GET"], include_in_schema=False),
    Route("/static/{name}", static_file, methods=["GET"], include_in_schema=False),
]
