"""The study server: one built study, its raters by invitation, every answer kept.

A FastAPI (ASGI) application over :class:`~anchormix_kedro.study.storage.StudyStore`:

- ``/r/<token>/``: a rater's link. It leads to the consent page, then the background
  questions, then the rating page; an unknown token answers 404 and serves nothing.
- ``/r/<token>/clips/<clip>``: the study's audio, to invited raters who consented only.
- ``/api/r/<token>/state`` and ``PUT /api/r/<token>/answers/<item>``: the rater's answers;
  a save names the revision it is based on and is refused (409, with the stored answer)
  when a newer one exists.
- ``/organiser/status``: progress per rater, with ``Authorization: Bearer <organiser token>``.

Every reply carries a strict Content-Security-Policy and no-referrer (the token is in the
path); request bodies are bounded; the access log never shows a token.
"""

from __future__ import annotations

import importlib.resources
import json
import logging
import re
import time
from collections.abc import Mapping
from typing import Annotated, Any, Literal
from urllib.parse import parse_qs

from fastapi import Body, FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, RedirectResponse, Response
from pydantic import BaseModel, ConfigDict, Field, StrictInt

from anchormix_kedro.study import checks, web
from anchormix_kedro.study.answers import progress
from anchormix_kedro.study.material import BuiltStudy, StudyShelf
from anchormix_kedro.study.storage import (
    SCENARIO_TEXTS,
    WORKFLOW_ITEM,
    WORKFLOW_TEXTS,
    AnswerError,
    Rater,
    StudyStore,
)
from anchormix_kedro.vocabulary import CRITERIA, LIKERT_MAX, LIKERT_MIN, MAX_TEXT_CHARS

access_log = logging.getLogger("anchormix_kedro.study.access")

CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; media-src 'self'; "
    "img-src 'self'; connect-src 'self'; form-action 'self'; base-uri 'none'; "
    "frame-ancestors 'none'"
)
MAX_BODY_BYTES = 128 * 1024
_TOKEN_IN_PATH = re.compile(r"/r/[^/?#]+")
STATIC = {
    "page.css": ("anchormix_kedro.study.kit", "resources/page.css", "text/css"),
    "study.js": ("anchormix_kedro.study.kit", "resources/study.js", "text/javascript"),
    "online.js": ("anchormix_kedro.study", "resources/online.js", "text/javascript"),
    "server.css": ("anchormix_kedro.study", "resources/server.css", "text/css"),
}


def redact(path: str) -> str:
    """A request path as logs may show it: the rater's token replaced."""
    return _TOKEN_IN_PATH.sub("/r/<token>", path)


Rating = Annotated[StrictInt, Field(ge=LIKERT_MIN, le=LIKERT_MAX)]
Text = Annotated[str, Field(max_length=MAX_TEXT_CHARS)]


class AnswerIn(BaseModel):
    """A save: the revision it is based on, the ratings (missing or null: not rated yet),
    the texts, and an id that makes a repeated save harmless."""

    model_config = ConfigDict(extra="forbid")
    revision: Annotated[StrictInt, Field(ge=0)]
    ratings: dict[str, Rating | None] = {}
    texts: dict[str, Text] = {}
    save_id: Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")]


class EventIn(BaseModel):
    """Seconds of audio the page played for one item since its last report."""

    model_config = ConfigDict(extra="forbid")
    kind: Literal["listened"]
    item: Annotated[str, Field(max_length=80)]
    seconds: Annotated[float, Field(ge=0, le=3600)]


class EventsIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    events: Annotated[list[EventIn], Field(max_length=100)]


def _static(name: str) -> Response:
    if name not in STATIC:
        raise HTTPException(404, "not found")
    package, path, media = STATIC[name]
    text = importlib.resources.files(package).joinpath(path).read_text(encoding="utf-8")
    return Response(text, media_type=media, headers={"Cache-Control": "no-cache"})


SECURITY_HEADERS = [
    (b"content-security-policy", CSP.encode()),
    (b"referrer-policy", b"no-referrer"),
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
]


class TooLarge(Exception):
    """A request body over :data:`MAX_BODY_BYTES`."""


class Guard:
    """Plain ASGI middleware (Starlette's ``BaseHTTPMiddleware`` costs about a millisecond
    a request): bounds request bodies (413), adds the security headers and
    ``Cache-Control: no-store`` where a reply sets none, and logs each request with its
    token redacted."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        started = time.perf_counter()
        status = [500]
        declared = dict(scope["headers"]).get(b"content-length", b"0")
        received = [0]

        async def bounded_receive():
            message = await receive()
            received[0] += len(message.get("body", b""))
            if received[0] > MAX_BODY_BYTES:
                raise TooLarge
            return message

        async def guarded_send(message):
            if message["type"] == "http.response.start":
                status[0] = message["status"]
                headers = list(message.get("headers", []))
                if not any(name == b"cache-control" for name, _ in headers):
                    headers.append((b"cache-control", b"no-store"))
                message = {**message, "headers": headers + SECURITY_HEADERS}
            await send(message)

        try:
            if not declared.isdigit() or int(declared) > MAX_BODY_BYTES:
                raise TooLarge
            await self.app(scope, bounded_receive, guarded_send)
        except TooLarge:
            await JSONResponse({"detail": "request body too large"}, 413)(
                scope, receive, guarded_send
            )
        access_log.info("%s %s %d %.1f ms", scope["method"], redact(scope["path"]), status[0],
                        (time.perf_counter() - started) * 1000)  # fmt: skip


def create_app(
    store: StudyStore,
    study: BuiltStudy,
    texts: Mapping[str, Any],
    shelf: StudyShelf | None = None,
) -> FastAPI:
    """The application serving ``study`` from ``store``; ``texts`` are the ``study``
    parameters (information sheet, instructions, withdrawal text, background choices).
    A rater invited to another built study on ``shelf`` is served that study."""
    store.register_study(study.version, study.study_id, len(study.scenario_ids))
    shelf = shelf or StudyShelf(studies=(study,))
    current = study
    app = FastAPI(title="AnchorMix listening study", docs_url=None, redoc_url=None,
                  openapi_url=None)  # fmt: skip

    def items_of(rater: Rater, served: BuiltStudy) -> list[tuple[str, str]]:
        """The rater's ``(item, scenario_id)`` in order: their assignment, or (raters
        invited without a design) every scenario of the study."""
        assigned = store.assignment_of(rater.id)
        if assigned:
            return [(row.item, row.scenario_id) for row in assigned]
        return [(sid, sid) for sid in served.scenario_ids]

    app.add_middleware(Guard)

    @app.exception_handler(RequestValidationError)
    async def invalid(_request: Request, error: RequestValidationError):
        first = error.errors()[0] if error.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", ()) if p != "body")
        return JSONResponse({"detail": f"{where or 'body'}: {first.get('msg', 'invalid')}"}, 422)

    def rater_of(token: str, consented: bool = True) -> tuple[Rater, BuiltStudy]:
        """The rater of a link and the study they were invited to; 404 for a link that is
        not a rater's, 403 (``consented``) before consent or after withdrawal."""
        rater = store.rater_by_token(token) if len(token) <= 100 else None
        served = shelf.get(rater.study_version) if rater is not None else None
        if rater is None or served is None:
            raise HTTPException(404, "unknown link")
        if consented and (rater.withdrawn or not rater.consented):
            raise HTTPException(403, "this link has no consent to the study (or was withdrawn)")
        return rater, served

    def html_page(text: str, status: int = 200) -> HTMLResponse:
        return HTMLResponse(text, status)

    def clips_of(rater: Rater, served: BuiltStudy) -> set[str]:
        """The clips of the rater's own scenarios (no other audio is served to them)."""
        clips = {s["scenario_id"]: s["clips"] for s in served.manifest["scenarios"]}
        return {
            clips[sid][role]
            for _item, sid in items_of(rater, served)
            for role in ("anchor", "target", "mix", "advised")
        }

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, error: HTTPException):
        if request.url.path.startswith(("/api/", "/organiser/")):
            return JSONResponse({"detail": error.detail}, error.status_code)
        return html_page(web.notice_page("AnchorMix listening study", str(error.detail)),
                         error.status_code)  # fmt: skip

    @app.get("/", response_class=HTMLResponse)
    def home():
        return web.notice_page(current.manifest["title"], "Open the personal link you were sent.")

    @app.get("/favicon.ico")
    def favicon():
        return Response(status_code=204)  # none: browsers ask for one on every page

    @app.get("/healthz")
    def health():
        return {"status": "ok", "study": current.version}

    @app.get("/static/{name}")
    def static(name: str):
        return _static(name)

    @app.get("/r/{token}")
    def no_slash(token: str):
        rater_of(token, consented=False)
        return RedirectResponse(f"/r/{token}/", 303)

    @app.get("/r/{token}/")
    def entry(token: str):
        rater, study = rater_of(token, consented=False)
        if rater.withdrawn or not rater.consented:
            return RedirectResponse("consent", 303)
        if rater.background is None:
            return RedirectResponse("background", 303)
        return RedirectResponse("check" if needs_check(rater) else "rate", 303)

    @app.get("/r/{token}/consent")
    def consent_form(token: str):
        rater, study = rater_of(token, consented=False)
        return html_page(
            web.consent_page(study.manifest, texts, rater.consented and not rater.withdrawn)
        )

    @app.post("/r/{token}/consent")
    async def consent(token: str, request: Request):
        rater, study = rater_of(token, consented=False)
        form = parse_qs((await request.body()).decode("utf-8", "replace"))
        if form.get("agree") != ["yes"]:
            return html_page(web.consent_page(study.manifest, texts, False), 400)
        store.consent(rater.id)
        return RedirectResponse("./", 303)

    @app.post("/r/{token}/withdraw")
    def withdraw(token: str):
        rater, study = rater_of(token, consented=False)
        store.withdraw(rater.id)
        return html_page(web.notice_page("You have withdrawn", texts["withdrawn_text"]))

    @app.get("/r/{token}/background")
    def background_form(token: str):
        rater, study = rater_of(token)
        return html_page(web.background_page(study.manifest, texts, rater.background))

    @app.post("/r/{token}/background")
    async def background(token: str, request: Request):
        rater, study = rater_of(token)
        form = {
            k: v[0] for k, v in parse_qs((await request.body()).decode("utf-8", "replace")).items()
        }
        choices = {"role": texts["roles"], "experience_years": texts["experience"],
                   "listening_setup": texts["listening_setups"]}  # fmt: skip
        if any(form.get(name) not in options for name, options in choices.items()):
            return html_page(web.background_page(study.manifest, texts, form), 400)
        store.set_background(rater.id, {**form, "genres": form.get("genres", "")[:300]})
        return RedirectResponse("rate", 303)

    def needs_check(rater: Rater) -> bool:
        return bool(texts.get("headphone_check", True)) and not store.has_event(
            rater.id, "headphone_check"
        )

    @app.get("/r/{token}/check")
    def check_form(token: str):
        rater, study = rater_of(token)
        first = items_of(rater, study)[0][1]
        clip = next(s["clips"]["mix"] for s in study.manifest["scenarios"]
                    if s["scenario_id"] == first)  # fmt: skip
        return html_page(web.check_page(study.manifest, clip, checks.TRIALS, checks.TONES))

    @app.get("/r/{token}/check/tone/{trial}/{tone}")
    def check_tone(token: str, trial: int, tone: int):
        rater, _study = rater_of(token)
        if not (1 <= trial <= checks.TRIALS and 1 <= tone <= checks.TONES):
            raise HTTPException(404, "unknown tone")
        kind = checks.trial_order(rater.id, trial)[tone - 1]
        return Response(checks.tone_wav(kind), media_type="audio/wav",
                        headers={"Cache-Control": "private, max-age=3600"})  # fmt: skip

    @app.post("/r/{token}/check")
    async def check(token: str, request: Request):
        rater, study = rater_of(token)
        form = parse_qs((await request.body()).decode("utf-8", "replace"))
        picked = {}
        for trial in range(1, checks.TRIALS + 1):
            value = (form.get(f"trial{trial}") or [""])[0]
            if value not in {str(k) for k in range(1, checks.TONES + 1)}:
                return RedirectResponse("check", 303)  # every set needs an answer
            picked[trial] = int(value)
        correct = checks.score(rater.id, picked)
        store.log_event(rater.id, "headphone_check", detail={"correct": correct,
                        "of": checks.TRIALS, "picked": picked})  # fmt: skip
        return RedirectResponse("rate", 303)

    @app.get("/r/{token}/rate")
    def rate(token: str):
        rater, study = rater_of(token)
        if rater.background is None:
            return RedirectResponse("background", 303)
        if needs_check(rater):
            return RedirectResponse("check", 303)
        return html_page(web.rating_page(study.manifest, texts, items_of(rater, study)))

    @app.get("/r/{token}/clips/{clip_id}")
    def clip(token: str, clip_id: str):
        rater, study = rater_of(token)
        path = study.clip_file(clip_id)
        if path is None or not path.is_file() or clip_id not in clips_of(rater, study):
            raise HTTPException(404, "unknown clip")
        return FileResponse(path, headers={"Cache-Control": "private, max-age=3600"})

    @app.get("/api/r/{token}/state")
    def state(token: str):
        rater, study = rater_of(token)
        saved = store.answers_of(rater.id)
        return {"rater": rater.label, "answers": [a.as_json() for a in saved.values()]}

    @app.put("/api/r/{token}/answers/{item}")
    def save(token: str, item: str, answer: Annotated[AnswerIn, Body()]):
        rater, study = rater_of(token)
        if item != WORKFLOW_ITEM and item not in {i for i, _ in items_of(rater, study)}:
            raise HTTPException(404, "unknown scenario")
        allowed = WORKFLOW_TEXTS if item == WORKFLOW_ITEM else SCENARIO_TEXTS
        ratings = {} if item == WORKFLOW_ITEM else {c: answer.ratings.get(c) for c in CRITERIA}
        unknown = sorted(set(answer.ratings) - set(CRITERIA)) + sorted(
            set(answer.texts) - set(allowed)
        )
        if unknown or (item == WORKFLOW_ITEM and answer.ratings):
            return JSONResponse(
                {"detail": f"unknown fields {unknown or sorted(answer.ratings)}"}, 422
            )
        try:
            result = store.save_answer(rater.id, item, answer.revision, ratings, answer.texts,
                                       answer.save_id)  # fmt: skip
        except AnswerError as error:
            return JSONResponse({"detail": str(error)}, 422)
        body = {"status": result.status, "answer": result.answer.as_json()}
        return JSONResponse(body, 409 if result.status == "conflict" else 200)

    @app.post("/api/r/{token}/events")
    def report(token: str, body: Annotated[EventsIn, Body()]):
        rater, study = rater_of(token)
        mine = {item for item, _sid in items_of(rater, study)}
        unknown = sorted({event.item for event in body.events} - mine)
        if unknown:
            return JSONResponse({"detail": f"unknown items {unknown[:3]}"}, 422)
        store.log_events(rater.id, [(e.kind, e.item, {"seconds": e.seconds}) for e in body.events])
        return {"stored": len(body.events)}

    @app.get("/organiser/status")
    def organiser_status(request: Request):
        header = request.headers.get("authorization", "")
        token = header[7:] if header.lower().startswith("bearer ") else ""
        if not token or not store.is_organiser(token):
            raise HTTPException(401, "an organiser token is needed (Authorization: Bearer ...)")
        table = progress(store, current.version, len(current.scenario_ids))
        rows = json.loads(table.to_json(orient="records", date_format="iso"))
        return {"study": current.version, "raters": rows}

    return app
