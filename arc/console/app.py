"""The console's FastAPI application: routers, error pages, security headers.

Errors speak the person's language and name the rule they apply: a page
without a session goes to the login page (the API answers 401), a refusal by
the access rules is 403 with the rule (REGULATION R5), a refusal by the
dispatcher's rules is 409 with its rule (see ``api.submit``), and so is a
refusal of a configuration change by the domain's rules (``admin_api``).
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import quote

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.middleware.base import BaseHTTPMiddleware, RequestResponseEndpoint

from arc.console import (
    admin_accounts,
    admin_api,
    admin_pages,
    api,
    audit_pages,
    guard_api,
    i18n,
    pages,
)
from arc.console.deps import Console, Forbidden, NotLoggedIn, lang

STATIC = Path(__file__).parent / "static"

# Scripts and styles from this console only; no inline script can run, so a
# value that slipped into a page unescaped still cannot execute.
_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self' data: blob:; style-src 'self'; "
        "script-src 'self'; connect-src 'self'; frame-ancestors 'none'; form-action 'self'"
    ),
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
}


def _wants_json(request: Request) -> bool:
    return request.url.path.startswith("/api/")


class _SecurityHeaders(BaseHTTPMiddleware):
    async def dispatch(self, request: Request, call_next: RequestResponseEndpoint) -> Response:
        response = await call_next(request)
        for name, value in _HEADERS.items():
            response.headers.setdefault(name, value)
        if request.url.path.startswith(("/api/", "/incidents/", "/accounts/", "/guard", "/audit/")):
            response.headers.setdefault("Cache-Control", "no-store")  # alarm records, their audit
        return response


def create_app(state: Console) -> FastAPI:
    """The console, serving ``state``'s database and dispatcher."""
    app = FastAPI(title="ARC console", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.console = state
    app.add_middleware(_SecurityHeaders)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    app.include_router(pages.router)
    app.include_router(admin_pages.router)
    app.include_router(audit_pages.router)
    app.include_router(api.router)
    app.include_router(guard_api.router)
    app.include_router(admin_api.router)
    app.include_router(admin_accounts.router)
    app.add_exception_handler(admin_api.Refused, admin_api.refused)

    @app.exception_handler(NotLoggedIn)
    async def _not_logged_in(request: Request, _error: NotLoggedIn) -> Response:
        if _wants_json(request):
            return JSONResponse({"error": "not logged in"}, status_code=401)
        target = quote(request.url.path + (f"?{request.url.query}" if request.url.query else ""))
        return RedirectResponse(f"/login?next={target}", status_code=303)

    @app.exception_handler(Forbidden)
    async def _forbidden(request: Request, error: Forbidden) -> Response:
        if _wants_json(request):
            return JSONResponse({"error": error.message, "rule": error.rule}, status_code=403)
        return pages.render(
            request,
            "error.html",
            lang(request),
            status_code=403,
            title=i18n.word("error.forbidden", lang(request)),
            message=f"{error.message} ({error.rule})",
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, error: StarletteHTTPException) -> Response:
        if _wants_json(request) or error.status_code not in (403, 404):
            return JSONResponse({"error": error.detail}, status_code=error.status_code)
        return pages.render(
            request,
            "error.html",
            lang(request),
            status_code=error.status_code,
            title=i18n.word("error.not_found", lang(request)),
            message=str(error.detail),
        )

    @app.exception_handler(RequestValidationError)
    async def _invalid(_request: Request, error: RequestValidationError) -> Response:
        problems = [
            f"{'.'.join(str(p) for p in e['loc'][1:]) or 'body'}: {e['msg']}"
            for e in error.errors()
        ]
        return JSONResponse({"error": "; ".join(problems)}, status_code=422)

    return app
