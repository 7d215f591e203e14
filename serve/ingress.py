"""The HTTP API of shopsense (FastAPI inside the Ingress deployment); OpenAPI at /docs.

    POST   /v1/events                  one event or {"events": [...]}      -> 202 once durably stored
    POST   /v1/recommend               {user_id, query?, k, filters?}       -> ranked products with reasons
    GET    /v1/users/{user_id}/profile                                      -> the current profile
    DELETE /v1/users/{user_id}                                              -> erases events, profile, log
    GET    /healthz

Bad input is refused before anything is stored: 400 (not JSON), 401 (API key),
413 (body or batch too large), 422 (a field is wrong; the message names it, e.g.
`events[3].type`). A batch is all-or-nothing.
"""
from __future__ import annotations

import hmac
import json

from fastapi import FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import TypeAdapter, ValidationError
from ray import serve
from ray.serve.handle import DeploymentHandle

from shopsense.config import Settings
from shopsense.pipeline import new_request_id, profile_view
from shopsense.privacy import pseudonymize
from shopsense.schemas import EraseResult, Event, EventBatch, IngestResult, ProfileView, RecommendRequest, \
    RecommendResponse

api = FastAPI(title="shopsense", version="0.1.0",
              description="Search and recommendations ranked with each shopper's live profile.")


def _where(loc: tuple) -> str:
    """('body', 'events', 3, 'type') -> 'events[3].type'"""
    text = ""
    for part in loc:
        if part == "body":
            continue
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "body"


def _problems(errors) -> list[str]:
    return [f"{_where(tuple(e['loc']))}: {e['msg']}" for e in errors]


@api.exception_handler(RequestValidationError)
async def _invalid_request(request: Request, exc: RequestValidationError):
    return JSONResponse(status_code=422, content={"error": "invalid request", "problems": _problems(exc.errors())})


def parse_events(body, max_batch: int) -> list[Event]:
    """One event object or {"events": [...]}; every event is validated before any is stored."""
    if isinstance(body, dict) and "events" in body:
        if isinstance(body["events"], list) and len(body["events"]) > max_batch:
            raise HTTPException(413, f"batch of {len(body['events'])} events exceeds the limit of {max_batch}")
        return EventBatch.model_validate(body).events
    if isinstance(body, dict):
        return [Event.model_validate(body)]
    raise HTTPException(422, "body must be an event object or {\"events\": [...]}")


# POST /v1/events reads its body itself (one event or a batch); describe both shapes in the OpenAPI document,
# with their nested models registered as components so that every reference resolves.
EVENTS_SCHEMA = TypeAdapter(Event | EventBatch).json_schema(ref_template="#/components/schemas/{model}")
EVENTS_BODY = {"requestBody": {"required": True, "content": {"application/json": {
    "schema": {"anyOf": EVENTS_SCHEMA["anyOf"]}}}}}
_default_openapi = api.openapi


def _openapi_with_event_schemas() -> dict:
    schema = _default_openapi()
    schema["components"]["schemas"].update(EVENTS_SCHEMA["$defs"])
    return schema


api.openapi = _openapi_with_event_schemas


@serve.deployment
@serve.ingress(api)
class Ingress:
    """Authorises and validates requests, then fans them out over the graph."""

    def __init__(self, args: dict, encoder: DeploymentHandle, behavior: DeploymentHandle, fusion: DeploymentHandle,
                 ranking: DeploymentHandle):
        self.settings = Settings.load(args.get("config"), args.get("settings"))
        self.encoder, self.behavior, self.fusion, self.ranking = encoder, behavior, fusion, ranking

    def _user_key(self, user_id: str) -> str:
        return pseudonymize(user_id, self.settings.privacy.pseudonym_key)

    def _authorize(self, request: Request, write: bool) -> None:
        key = self.settings.api.api_key
        if key is None or not (write or self.settings.api.read_requires_key):
            return
        given = request.headers.get("x-api-key", "")
        if not hmac.compare_digest(given.encode(), key.encode()):
            raise HTTPException(401, "missing or wrong X-API-Key")

    async def _read_json(self, request: Request):
        limit = self.settings.api.max_body_bytes
        if int(request.headers.get("content-length") or 0) > limit:
            raise HTTPException(413, f"body exceeds the limit of {limit} bytes")
        body = await request.body()
        if len(body) > limit:
            raise HTTPException(413, f"body exceeds the limit of {limit} bytes")
        try:
            return json.loads(body)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise HTTPException(400, f"body is not valid JSON: {exc}") from None

    @api.post("/v1/events", status_code=202, response_model=IngestResult, openapi_extra=EVENTS_BODY)
    async def post_events(self, request: Request) -> IngestResult:
        self._authorize(request, write=True)
        body = await self._read_json(request)
        try:
            events = parse_events(body, self.settings.api.max_batch_events)
        except ValidationError as exc:
            return JSONResponse(status_code=422, content={"error": "invalid event", "problems": _problems(exc.errors())})
        return await self.behavior.ingest.remote(events)

    @api.post("/v1/recommend", response_model=RecommendResponse)
    async def recommend(self, body: RecommendRequest, request: Request) -> RecommendResponse:
        self._authorize(request, write=False)
        key = self._user_key(body.user_id)
        # Encoder and BehaviorFeatures run concurrently; Fusion receives both results.
        query_vectors = self.encoder.encode.remote([body.query]) if body.query else None
        fused = self.fusion.fuse.remote(key, query_vectors, self.behavior.summarize.remote(key))
        return await self.ranking.rank.remote(new_request_id(), key, body, fused)

    @api.get("/v1/users/{user_id}/profile", response_model=ProfileView)
    async def profile(self, user_id: str, request: Request) -> ProfileView:
        self._authorize(request, write=False)
        key = self._user_key(user_id)
        _, _, record = await self.fusion.fuse.remote(key, None, self.behavior.summarize.remote(key))
        return profile_view(user_id, record)

    @api.delete("/v1/users/{user_id}", response_model=EraseResult)
    async def erase(self, user_id: str, request: Request) -> EraseResult:
        self._authorize(request, write=True)
        return EraseResult(erased_events=await self.behavior.erase.remote(self._user_key(user_id)))

    @api.get("/healthz")
    async def healthz(self) -> dict:
        encoder = await self.encoder.info.remote()
        return {"status": "ok", "encoder": encoder["backend"], "products": await self.ranking.catalog_size.remote()}
