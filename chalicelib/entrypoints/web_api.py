"""The web inbox (issue 16): one HTML page and its script and style, served by the same API.

The page uses the public routes only, with the agent's Cognito token, so anything it does an
integration can do too. Everything is text (HTML, JavaScript, CSS, SVG): no ``binary_types`` to
configure and nothing to build at deploy time. Files are read once per container, on first use.

    GET /                  the page, with the sign-in settings of this stage
    GET /assets/{name}     app.js, app.css, icon.svg
"""
from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Dict, Tuple

from chalice import Blueprint, Response

web_api = Blueprint(__name__)

WEB_DIR = Path(__file__).resolve().parent.parent / "web"
ASSETS: Dict[str, str] = {
    "app.js": "application/javascript; charset=utf-8",
    "app.css": "text/css; charset=utf-8",
    "icon.svg": "image/svg+xml",
}
# The page is the same for every agent; the token never reaches the server in a URL (it is kept
# in the browser's session storage), so caching the shell is safe; assets are versioned by hash.
_SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
}


@functools.lru_cache(maxsize=None)
def _asset(name: str) -> Tuple[str, str]:
    """(text, short content hash) of a web file; read once per container."""
    import hashlib

    text = (WEB_DIR / name).read_text(encoding="utf-8")
    return text, hashlib.sha256(text.encode("utf-8")).hexdigest()[:12]


def _sign_in_settings() -> Dict[str, str]:
    """What the page needs to sign an agent in with Cognito (public values, no secret)."""
    from chalicelib.config import settings

    config = settings()
    endpoint = config.aws_endpoint_url or f"https://cognito-idp.{config.region}.amazonaws.com"
    return {"region": config.region, "client_id": config.user_pool_client_id,
            "cognito_endpoint": endpoint.rstrip("/") + "/", "stage": config.stage}


@web_api.route("/", methods=["GET"])
def web_page():
    page, _ = _asset("index.html")
    versions = {name: _asset(name)[1] for name in ASSETS}
    # Inlined as JSON in a script element of type application/json: never executed, and "<" is
    # escaped so no value can close the element.
    boot = json.dumps({"signIn": _sign_in_settings(), "assets": versions}).replace("<", "\\u003c")
    body = (page.replace("{{BOOT}}", boot)
            .replace("{{JS}}", versions["app.js"]).replace("{{CSS}}", versions["app.css"]))
    return Response(body=body, status_code=200, headers={
        "Content-Type": "text/html; charset=utf-8", "Cache-Control": "no-cache", **_SECURITY_HEADERS,
        "Content-Security-Policy": ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: https:; "
                                    "media-src 'self' https:; connect-src 'self' https: http://127.0.0.1:* http://localhost:*; "
                                    "frame-ancestors 'none'; base-uri 'none'; form-action 'self'"),
    })


@web_api.route("/assets/{name}", methods=["GET"])
def web_asset(name: str):
    content_type = ASSETS.get(name)
    if content_type is None:
        from chalicelib.entrypoints.http import error_response

        return error_response(404, f"no web asset named {name[:60]!r}; the page uses " + ", ".join(sorted(ASSETS)))
    text, _ = _asset(name)
    return Response(body=text, status_code=200, headers={
        "Content-Type": content_type, "Cache-Control": "public, max-age=31536000, immutable", **_SECURITY_HEADERS})
