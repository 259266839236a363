"""The read-only web app: pages, JSON API and /metrics over one shared StateCache.

Every route is GET (HEAD): nothing here writes. Names from the URL are checked against
the patterns experiment IDs, suite names and result files have, then resolved and kept
inside the results folder, so ``..``, absolute paths and symlinks out all end in 404.
"""

from __future__ import annotations

import csv
import hmac
import json
import math
import re
from importlib import resources
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Receive, Scope, Send

from joulebench import api
from joulebench.serve import metrics
from joulebench.serve.state import StateCache
from joulebench.tracker import format_id

ID_PATTERN = re.compile(r"^[0-9]{1,12}$")
SUITE_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
FILE_PATTERN = re.compile(r"^[0-9]{1,12}_[0-9]_[A-Za-z0-9_.-]+\.(json|csv)$")
COOKIE = "joulebench_token"


class _JSON(JSONResponse):
    """NaN is not JSON: the statistics' gaps go out as null."""

    def render(self, content: Any) -> bytes:
        return json.dumps(_finite(content), default=str, allow_nan=False).encode("utf-8")


def _finite(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


def not_found(what: str) -> Response:
    return _JSON({"error": f"{what}: not found"}, status_code=404)


class TokenGate:
    """401 and no data without the token: ``?token=``, ``Authorization: Bearer``, or the
    cookie the first page load with ``?token=`` sets (so the page's own requests and
    links carry it without putting it in every URL)."""

    def __init__(self, app: ASGIApp, token: str | None) -> None:
        self.app, self.token = app, token

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or self.token is None:
            await self.app(scope, receive, send)
            return
        request = Request(scope)
        given = request.query_params.get("token")
        from_query = given is not None
        if given is None:
            auth = request.headers.get("authorization", "")
            given = auth[7:] if auth.lower().startswith("bearer ") else None
        if given is None:
            given = request.cookies.get(_cookie_name(request))
        if given is None or not hmac.compare_digest(given.encode(), self.token.encode()):
            response = _JSON(
                {
                    "error": "missing or wrong token: open the URL `joulebench "
                    "serve` printed (it ends in ?token=...)"
                },
                401,
            )
            await response(scope, receive, send)
            return
        if not from_query:
            await self.app(scope, receive, send)
            return

        async def send_with_cookie(message: Any) -> None:
            if message["type"] == "http.response.start":
                cookie = f"{_cookie_name(request)}={self.token}; Path=/; HttpOnly; SameSite=Strict"
                message.setdefault("headers", []).append((b"set-cookie", cookie.encode()))
            await send(message)

        await self.app(scope, receive, send_with_cookie)


def _cookie_name(request: Request) -> str:
    # Cookies ignore ports: two dashboards on one host must not overwrite each other's.
    return f"{COOKIE}_{request.url.port or 80}"


def _inside(path: Path, folder: Path) -> bool:
    try:
        return path.resolve().is_relative_to(folder.resolve())
    except (OSError, RuntimeError):
        return False


def experiment_folder(results_dir: Path, experiment_id: str) -> Path | None:
    """The result folder of a valid ID that stays inside raw_results/, else None."""
    from joulebench.results import raw_dir

    if not ID_PATTERN.match(experiment_id):
        return None
    # As `show` does: "1" finds "0001", a folder named exactly as given wins.
    for name in dict.fromkeys([experiment_id, format_id(int(experiment_id))]):
        folder = raw_dir(results_dir, name)
        if folder.is_dir() and _inside(folder, results_dir / "raw_results"):
            return folder
    return None


def _etagged(request: Request, body: dict[str, Any], version: str, status: int = 200) -> Response:
    """304 while the client already holds this version: a polling page costs a header."""
    etag = f'"{version}"'
    if request.headers.get("if-none-match") == etag:
        return Response(status_code=304, headers={"etag": etag})
    return _JSON(body, status_code=status, headers={"etag": etag, "cache-control": "no-cache"})


class Endpoints:
    """The handlers, over one shared cache; file work runs in the thread pool."""

    def __init__(self, paths: api.Paths, cache: StateCache, index_html: bytes) -> None:
        self.paths, self.cache, self.index_html = paths, cache, index_html

    async def page(self, request: Request) -> Response:
        # One page for every view: the script picks the view from the address.
        return Response(
            self.index_html,
            media_type="text/html; charset=utf-8",
            headers={"cache-control": "no-store"},
        )

    async def suites(self, request: Request) -> Response:
        snap = await run_in_threadpool(self.cache.get)
        return _etagged(request, snap.suites, snap.version, 200 if snap.tracker_ok else 503)

    async def suite(self, request: Request) -> Response:
        name = request.path_params["suite"]
        if not SUITE_PATTERN.match(name):
            return not_found(f"suite '{name}'")
        body = await run_in_threadpool(self.cache.suite_page, name)
        if body is None:
            return not_found(f"suite '{name}'")
        return _etagged(request, body, body["version"])

    async def experiment(self, request: Request) -> Response:
        eid = request.path_params["eid"]
        return await run_in_threadpool(_experiment_body, self.paths.results_dir, eid)

    async def timeline(self, request: Request) -> Response:
        eid = request.path_params["eid"]
        return await run_in_threadpool(_timeline_body, self.paths.results_dir, eid)

    async def result_file(self, request: Request) -> Response:
        folder = experiment_folder(self.paths.results_dir, request.path_params["eid"])
        name = request.path_params["name"]
        if folder is None or not FILE_PATTERN.match(name) or not name.startswith(f"{folder.name}_"):
            return not_found(f"file '{name}'")
        path = folder / name
        if not path.is_file() or not _inside(path, folder):
            return not_found(f"file '{name}'")
        kind = "application/json" if name.endswith(".json") else "text/csv"
        return FileResponse(path, media_type=kind)

    async def prometheus(self, request: Request) -> Response:
        snap = await run_in_threadpool(self.cache.get)
        return Response(metrics.render(snap), media_type=metrics.CONTENT_TYPE)


LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "[::1]")


def allowed_hosts(bound_host: str) -> list[str]:
    """Host headers accepted without a token: loopback names and the bound address."""
    shown = f"[{bound_host}]" if ":" in bound_host else bound_host
    return list(dict.fromkeys([*LOOPBACK_HOSTS, shown.lower()]))


def build_app(
    paths: api.Paths,
    token: str | None,
    *,
    use_sacct: bool = True,
    cache: StateCache | None = None,
    host: str = "127.0.0.1",
) -> Starlette:
    """The ASGI app behind the token gate; ``cache`` may be passed to share or inspect it;
    ``host`` is the address served (its name is accepted in Host headers without a token)."""
    cache = cache or StateCache(paths, use_sacct=use_sacct)
    static = resources.files("joulebench.serve") / "static"
    ep = Endpoints(paths, cache, (static / "index.html").read_bytes())
    routes = [
        Route("/", ep.page),
        Route("/suites/{suite}", ep.page),
        Route("/experiments/{eid}", ep.page),
        Route("/api/suites", ep.suites),
        Route("/api/suites/{suite}", ep.suite),
        Route("/api/experiments/{eid}", ep.experiment),
        Route("/api/experiments/{eid}/timeline", ep.timeline),
        Route("/api/experiments/{eid}/files/{name}", ep.result_file),
        Route("/metrics", ep.prometheus),
        Mount("/static", StaticFiles(directory=str(static)), name="static"),
    ]
    app = Starlette(routes=routes)
    app.state.cache = cache
    if token is None:
        # Without a token a page on any web site could read the dashboard through DNS
        # rebinding (its own name resolving to 127.0.0.1): only loopback Host headers pass.
        return TrustedHostMiddleware(app, allowed_hosts=allowed_hosts(host))  # type: ignore[return-value]
    return TokenGate(app, token)  # type: ignore[return-value]


class ResultFilesProblem(Exception):
    """A section file missing, outside the results folder, not JSON or of the wrong shape;
    the message names the file by name only (no server paths in responses)."""


def read_sections(results_dir: Path, folder: Path) -> dict[str, dict[str, Any]]:
    """What `show` reads, each file checked to stay inside the experiment's folder (a
    symlinked section file pointing elsewhere is treated as missing) and to hold an object."""
    from joulebench.results.layout import SHOWN_SECTIONS, result_file

    parts: dict[str, dict[str, Any]] = {}
    for section in SHOWN_SECTIONS:
        path = result_file(results_dir, folder.name, section)
        if not path.is_file() or not _inside(path, folder):
            raise ResultFilesProblem(f"{path.name}: not found (a run still going, or not done)")
        try:
            content = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):  # UnicodeDecodeError is a ValueError
            raise ResultFilesProblem(f"{path.name}: not valid JSON; rerun the experiment") from None
        if not isinstance(content, dict):
            raise ResultFilesProblem(f"{path.name}: not a JSON object; rerun the experiment")
        parts[section] = content
    return parts


def _experiment_body(results_dir: Path, eid: str) -> Response:
    from joulebench.measure.timeline import TIMELINE_SUFFIX
    from joulebench.results.figures import experiment_figures

    folder = experiment_folder(results_dir, eid)
    if folder is None:
        return not_found(f"experiment '{eid}'")
    try:
        parts = read_sections(results_dir, folder)
        figures = experiment_figures(parts)
    except ResultFilesProblem as exc:
        # Half written (a run still going) or damaged: say which file, keep serving.
        return _JSON({"error": f"experiment {folder.name}: {exc}"}, 404)
    except (KeyError, TypeError, AttributeError, ValueError) as exc:
        return _JSON({"error": f"experiment {folder.name}: result files incomplete ({exc!r})"}, 404)
    files = sorted(p.name for p in folder.iterdir() if p.is_file() and FILE_PATTERN.match(p.name))
    setup = parts["setup"]
    return _JSON(
        {
            "experiment_id": folder.name,
            "key": setup.get("key"),
            "suite": setup.get("suite"),
            "figures": figures,
            "provenance": setup.get("provenance", {}),
            "energy": parts["energy"],
            "files": files,
            "has_timeline": any(f.endswith(TIMELINE_SUFFIX) for f in files),
        }
    )


def _timeline_body(results_dir: Path, eid: str) -> Response:
    from joulebench.measure.timeline import read_timeline, timeline_path

    folder = experiment_folder(results_dir, eid)
    if folder is None:
        return not_found(f"experiment '{eid}'")
    path = timeline_path(folder, folder.name)
    if not path.is_file() or not _inside(path, folder):
        return not_found(
            f"power timeline of experiment {folder.name} (runs before the "
            "timeline existed have none)"
        )
    try:
        rows = read_timeline(path)
    except (OSError, ValueError, csv.Error) as exc:
        # An OSError's text holds the absolute path: the page gets the file's name only.
        reason = exc.strerror if isinstance(exc, OSError) else str(exc)
        return _JSON({"error": f"{path.name}: unreadable ({reason})"}, 404)
    return _JSON({"experiment_id": folder.name, "rows": rows})
