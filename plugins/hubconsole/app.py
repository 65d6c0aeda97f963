"""The console as one FastAPI app, mounted by the plugin in Airflow's API server.

Errors are answered for who asked: a browser that is not signed in is sent to Airflow's
login page and back; a script gets the status code and a JSON ``detail``.
"""
from __future__ import annotations

from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse, Response

from . import api, pages
from .auth import login_url
from .params import plain_text
from .render import page

ICON = ('<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 24 24" fill="none" stroke="#2f8f83" stroke-width="2">'
        '<circle cx="12" cy="12" r="3"/><circle cx="4" cy="5" r="2"/><circle cx="20" cy="5" r="2"/>'
        '<circle cx="4" cy="19" r="2"/><circle cx="20" cy="19" r="2"/>'
        '<path d="M6 6l4 4M18 6l-4 4M6 18l4-4M18 18l-4-4"/></svg>')


def _wants_html(request: Request) -> bool:
    path = request.url.path
    return not any(part in path for part in ("/api/", "/metrics")) and "text/html" in request.headers.get("accept", "")


def create_app() -> FastAPI:
    app = FastAPI(title="Hub operations console", docs_url=None, redoc_url=None, openapi_url=None,
                  dependencies=[Depends(plain_text)])
    app.include_router(pages.router)
    app.include_router(api.router)

    @app.get("/icon.svg", include_in_schema=False)
    def icon() -> Response:  # public: the Airflow UI shows it in its navigation
        return Response(ICON, media_type="image/svg+xml", headers={"Cache-Control": "max-age=86400"})

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> Response:
        if _wants_html(request):
            if exc.status_code == 401 and request.method == "GET":
                return RedirectResponse(login_url(request), status_code=303)
            return page(request, "error.html", status_code=exc.status_code, code=exc.status_code, detail=exc.detail)
        return JSONResponse({"detail": exc.detail}, status_code=exc.status_code, headers=exc.headers)

    @app.exception_handler(RequestValidationError)
    async def bad_request(request: Request, exc: RequestValidationError) -> Response:
        detail = "; ".join(f"{'.'.join(map(str, e.get('loc', ())))}: {e.get('msg')}" for e in exc.errors())
        if _wants_html(request):
            return page(request, "error.html", status_code=422, code=422, detail=detail)
        return JSONResponse({"detail": detail}, status_code=422)

    return app
