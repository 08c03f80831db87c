"""The API's own documentation: the OpenAPI schema, Swagger UI (`/docs`) and ReDoc
(`/redoc`), their JavaScript and CSS served from the installed package `fastapi-offline`
(pinned in pyproject.toml), so that they work without internet.

With an API key set they need the key like every other endpoint, unless
`NLD_PUBLIC_DOCS=true` (the schema describes the API, not the models or their data).
"""

from __future__ import annotations

from importlib.resources import files
from typing import Any

from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse
from fastapi.staticfiles import StaticFiles

from service.deps import BearerDep, KeyDep, SettingsDep, require_api_key

ASSETS = "/docs-assets"

DESCRIPTION = """\
Serves Neural Langevin Dynamics models: latent SDEs whose prior drift is the gradient of a
learned energy E(z). The minima of E are the hidden states, their basins segment a stream
online, exp(-beta E) gives how much time is spent in each state, and saddles give the
transitions between them.

- **Streaming segmentation** (`POST /segment/stream`): send a stream's observations in
  chunks; a session keeps the encoder's state between chunks, so any chunking labels a
  stream as one pass would.
- **The landscape** (`/landscape/...`): minima with their occupancies, saddles with barriers,
  rates and dwell times, and the energy on a grid.
- **The prior** (`POST /sample`): paths of the learned dynamics.

Units: times are in observation steps unless said otherwise; energies are in the model's
energy units, and `beta` converts them (a barrier of 2/beta is two thermal energies).
Errors are JSON `{"detail": "what went wrong and what to do"}`; a 422 for invalid input adds
`errors`, one entry per invalid field. While a model is loading its endpoints answer 503 with
`Retry-After`. With an API key, send it as `X-API-Key: KEY` or `Authorization: Bearer KEY`.
"""

TAGS: list[dict[str, Any]] = [
    {"name": "segment", "description": "Streaming segmentation of observations into states."},
    {"name": "landscape", "description": "The learned energy: minima, occupancies, saddles."},
    {"name": "sample", "description": "Paths of the prior dynamics."},
    {"name": "models", "description": "The models this service holds."},
    {"name": "health", "description": "Liveness, readiness and Prometheus metrics."},
    {"name": "admin", "description": "Reloading models while serving (needs the API key)."},
]


async def docs_access(settings: SettingsDep, key: KeyDep, bearer: BearerDep) -> None:
    if not settings.public_docs:
        await require_api_key(settings, key, bearer)


router = APIRouter(include_in_schema=False, dependencies=[Depends(docs_access)])


def _root(request: Request) -> str:
    return str(request.scope.get("root_path", "")).rstrip("/")


@router.get("/openapi.json")
async def openapi(request: Request) -> JSONResponse:
    return JSONResponse(request.app.openapi())


@router.get("/docs")
async def swagger_ui(request: Request) -> HTMLResponse:
    root = _root(request)
    return get_swagger_ui_html(
        openapi_url=f"{root}/openapi.json",
        title="nld - Swagger UI",
        swagger_js_url=f"{root}{ASSETS}/swagger-ui-bundle.js",
        swagger_css_url=f"{root}{ASSETS}/swagger-ui.css",
        swagger_favicon_url=f"{root}{ASSETS}/favicon.png",
    )


@router.get("/redoc")
async def redoc(request: Request) -> HTMLResponse:
    root = _root(request)
    return get_redoc_html(
        openapi_url=f"{root}/openapi.json",
        title="nld - ReDoc",
        redoc_js_url=f"{root}{ASSETS}/redoc.standalone.js",
        redoc_favicon_url=f"{root}{ASSETS}/favicon.png",
        with_google_fonts=False,
    )


def mount_assets(app: FastAPI) -> None:
    """The documentation pages' JavaScript, CSS and icon (public: they hold no data)."""
    static = files("fastapi_offline") / "static"
    app.mount(ASSETS, StaticFiles(directory=str(static)), name="docs-assets")
