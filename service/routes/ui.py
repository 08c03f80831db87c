"""The landscape page (`GET /ui`): look at a model and watch a stream being labelled, in the
browser.

The page and its script are files of this package (`service/ui/`). Plotly.js draws it: the
page loads its cartesian bundle, vendored in `service/ui/vendor/` (1.5 MB: contours, heat maps,
bars, lines), and the 3-D surface the full bundle (4.8 MB) from the installed `plotly`
package (pinned in pyproject.toml). Nothing is fetched from outside the service. The page
itself holds no data, so it is public; everything it shows comes from the API with the key
typed into it.

Two endpoints serve the page's stream view (hidden from the OpenAPI schema, keyed like the
rest): the example recordings bundled beside a model (`MODELS_DIR/NAME/examples/*.csv`), and
a table the user uploads, read by the same loader as `nld segment --data`, with its errors.
"""

from __future__ import annotations

import csv
import tempfile
from importlib.resources import files
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import APIRouter, FastAPI, HTTPException, Query, Request
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles
from starlette.concurrency import run_in_threadpool

from nld.errors import DataError
from service.deps import AUTH, RegistryDep, SettingsDep, resolve_model

if TYPE_CHECKING:  # nld.data imports scipy.stats (a second): read tables only when asked
    from nld.data.recordings import Recordings
    from nld.data.tables import TableOptions
    from service.config import Settings
    from service.loaded import LoadedModel

ASSETS = "/ui/assets"  # the page's script, style and vendored Plotly.js (service/ui)
VENDOR = "/ui/vendor"  # the full plotly.min.js, from the plotly package
EXAMPLES = "examples"  # a model directory's example recordings
MAX_EXAMPLES = 32
SUFFIXES = (".csv", ".tsv")  # the tables the page reads

page = APIRouter(include_in_schema=False)
router = APIRouter(prefix="/ui", include_in_schema=False, dependencies=AUTH)


@page.get("/ui")
async def landscape_page(request: Request) -> HTMLResponse:
    root = str(request.scope.get("root_path", "")).rstrip("/")
    html = (files("service") / "ui" / "index.html").read_text()
    return HTMLResponse(html.replace("{{root}}", root))


def _recording(recs: Recordings, name: str) -> dict[str, Any]:
    """The first recording of `recs` for the page: observations [T][D], its channels, and its
    known states if the table had a states column."""
    out: dict[str, Any] = {
        "name": name,
        "observations": recs.arrays[0].tolist(),
        "columns": recs.columns,
        "recordings": len(recs.arrays),
    }
    if recs.states is not None:
        out["states"] = recs.states[0].tolist()
    return out


def _read(lm: LoadedModel, path: Path, name: str, options: TableOptions) -> dict[str, Any]:
    """A table for the model, as `nld segment --data` reads it (the model's training columns
    where it has them), or a 422 with the loader's message naming the file `name`."""
    from nld.data.recordings import read_for_model

    trained_on = (lm.meta.get("data") or {}).get("columns")
    try:
        recs = read_for_model(path, lm.model.cfg.obs_dim, trained_on, options, where=name)
    except DataError as e:
        raise HTTPException(422, str(e).replace(str(path), name)) from None
    return _recording(recs, name)


def _examples_dir(settings: Settings, name: str) -> Path:
    return settings.models_dir / name / EXAMPLES


@router.get("/examples")
async def examples(reg: RegistryDep, settings: SettingsDep, model: str | None = None) -> dict:
    """The names of the example recordings (CSV or TSV tables) bundled with a model."""
    lm = resolve_model(reg, model)
    where = _examples_dir(settings, lm.name)
    found = (
        sorted(p.name for p in where.glob("*") if p.suffix in SUFFIXES) if where.is_dir() else []
    )
    return {"model": lm.name, "examples": found[:MAX_EXAMPLES]}


@router.get("/examples/{example}")
async def example(
    example: str,
    reg: RegistryDep,
    settings: SettingsDep,
    model: str | None = None,
) -> dict:
    """One bundled example recording (its first sequence), with its known states if any."""
    lm = resolve_model(reg, model)
    path = _examples_dir(settings, lm.name) / example
    if example.startswith(".") or path.suffix not in SUFFIXES or not path.is_file():
        raise HTTPException(404, f"model {lm.name!r} has no example {example!r}")
    from nld.data.tables import TableOptions

    options = TableOptions(sequence_column=None, states_column=_states_column(path))
    return await run_in_threadpool(_read, lm, path, example, options)


def _states_column(path: Path) -> str | None:
    """`state`, where an example table has that column (its known states)."""
    with path.open(newline="") as f:
        header = next(csv.reader(f, delimiter="," if path.suffix == ".csv" else "\t"), [])
    return "state" if "state" in header else None


@router.post("/table")
async def table(
    request: Request,
    reg: RegistryDep,
    model: Annotated[str | None, Query(min_length=1, max_length=128)] = None,
    filename: Annotated[str, Query(min_length=1, max_length=256)] = "upload.csv",
    sequence_column: Annotated[str | None, Query(min_length=1, max_length=128)] = None,
    states_column: Annotated[str | None, Query(min_length=1, max_length=128)] = None,
    time_column: Annotated[str | None, Query(min_length=1, max_length=128)] = None,
) -> dict:
    """An uploaded CSV or TSV table (the request body) for a model, read as
    `nld segment --data` reads one (the same options): its first recording, or a 422 naming
    what is wrong."""
    lm = resolve_model(reg, model)
    suffix = Path(filename).suffix.lower()
    if suffix not in SUFFIXES:
        raise HTTPException(422, f"{filename}: upload a .csv or .tsv table")
    body = await request.body()
    if not body.strip():
        raise HTTPException(422, f"{filename}: the file is empty")
    from nld.data.tables import TableOptions

    options = TableOptions(
        time_column=time_column, sequence_column=sequence_column, states_column=states_column
    )

    def read() -> dict[str, Any]:
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / f"upload{suffix}"
            path.write_bytes(body)
            return _read(lm, path, filename, options)

    return await run_in_threadpool(read)


def mount(app: FastAPI) -> None:
    """The page's own files and Plotly.js (public: they hold no data)."""
    app.mount(ASSETS, StaticFiles(packages=[("service", "ui")]), name="ui-assets")
    plotly = files("plotly") / "package_data"
    app.mount(VENDOR, StaticFiles(directory=str(plotly)), name="ui-vendor")
