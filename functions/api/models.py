"""``/admin/models``: the embedding model registry over HTTP, as ``contentfn models`` does it from a
shell that reaches the database. Every route lives under ``/admin/`` so it can be held to the
admin scope as one group. Model keys travel in bodies: they hold ``@`` and ``.``, which a path
``{id}`` does not take.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, HttpUrl

from functions.api.errors import ApiError
from functions.api.params import json_body
from functions.api.routing import Call
from shared.embedder.providers import add_with_default, builtin_spec, openai_spec
from shared.errors import ModelNotReady
from shared.store.registry import (
    ActivationRefused,
    ModelConflict,
    ModelNotFound,
    ModelProgress,
    activate_model,
    model_progress,
    retire_model,
    rollback_model,
)

__all__ = [
    "AddModelRequest",
    "ModelAnswer",
    "ModelKeyRequest",
    "ModelList",
    "RetireAnswer",
    "activate_model_route",
    "add_model_route",
    "list_models_route",
    "retire_model_route",
    "rollback_model_route",
]

_KEY = Field(min_length=3, max_length=200, pattern=r"^[A-Za-z0-9._:/-]+@[A-Za-z0-9._:+-]+$")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class AddModelRequest(_Strict):
    provider: Literal["onnx", "openai"]
    variant: Literal["fp32", "int8"] | None = Field(default=None, description="onnx: the built-in variant")
    name: str | None = Field(default=None, min_length=1, max_length=100, pattern=r"^[A-Za-z0-9._/-]+$")
    version: str = Field(default="1", min_length=1, max_length=50, pattern=r"^[A-Za-z0-9._+-]+$")
    dimensions: int | None = Field(default=None, ge=1, le=2000)
    base_url: HttpUrl | None = Field(default=None, description="openai: the endpoint's base URL")
    remote_model: str | None = Field(default=None, max_length=100)
    price_per_mtok: float = Field(default=0.0, ge=0)


class ModelKeyRequest(_Strict):
    key: str = _KEY


class ModelView(_Strict):
    key: str
    state: Literal["shadow", "active", "retired"]
    provider: str
    dimensions: int
    tracks: int
    embedded: int
    percent: float
    index: Literal["valid", "invalid", "missing"]
    backfill_done: bool


class ModelList(_Strict):
    items: list[ModelView]


class ModelAnswer(_Strict):
    key: str
    state: Literal["shadow", "active", "retired"]


class RetireAnswer(_Strict):
    key: str
    vectors_deleted: int


def _view(m: ModelProgress) -> ModelView:
    return ModelView(
        key=m.key,
        state="active" if m.state == "active" else "retired" if m.state == "retired" else "shadow",
        provider=m.provider,
        dimensions=m.dimensions,
        tracks=m.tracks,
        embedded=m.embedded,
        percent=m.percent,
        index="valid" if m.index == "valid" else "invalid" if m.index == "invalid" else "missing",
        backfill_done=m.backfill_done,
    )


def list_models_route(call: Call) -> ModelList:
    retired = call.query["retired"]
    if retired not in (None, "true", "false"):
        raise ApiError(400, "invalid_parameter", "retired must be true or false")
    with call.services.db.connection() as conn:
        progress = model_progress(conn, retired=retired == "true")
        conn.commit()
    return ModelList(items=[_view(m) for m in progress])


def add_model_route(call: Call) -> ModelAnswer:
    body = json_body(call.request, AddModelRequest, what="model (provider, variant or name/dimensions/base_url)")
    settings = call.services.settings
    if body.provider == "onnx":
        if body.variant is None:
            raise ApiError(400, "invalid_body", "an onnx model needs its variant")
        try:
            spec = builtin_spec(settings, body.variant)
        except ModelNotReady:
            raise ApiError(409, "model_not_built", "that variant of the built-in model was not built") from None
    else:
        if body.name is None or body.dimensions is None or body.base_url is None:
            raise ApiError(400, "invalid_body", "an openai model needs name, dimensions and base_url")
        spec = openai_spec(
            name=body.name,
            version=body.version,
            dimensions=body.dimensions,
            base_url=str(body.base_url),
            model=body.remote_model,
            price_per_mtok=body.price_per_mtok,
        )
    with call.services.db.connection() as conn:
        try:
            model = add_with_default(conn, settings, spec)
        except ModelConflict:
            conn.rollback()
            raise ApiError(409, "model_conflict", "another model is registered under that name and version") from None
        conn.commit()
    call.services.forget_search_model()  # the first model registered becomes active
    return ModelAnswer(key=model.key, state=model.state.value)


def activate_model_route(call: Call) -> ModelAnswer:
    body = json_body(call.request, ModelKeyRequest, what="model key")
    with call.services.db.connection() as conn:
        try:
            model = activate_model(conn, body.key)
        except ModelNotFound:
            conn.rollback()
            raise ApiError(404, "not_found", "no such model") from None
        except ActivationRefused as exc:
            conn.rollback()
            # What is missing, in counts and states: nothing of the request is echoed.
            raise ApiError(409, "activation_refused", "not ready: " + "; ".join(exc.missing)) from None
        conn.commit()
    call.services.forget_search_model()
    return ModelAnswer(key=model.key, state=model.state.value)


def rollback_model_route(call: Call) -> ModelAnswer:
    with call.services.db.connection() as conn:
        try:
            model = rollback_model(conn)
        except ModelConflict as exc:
            conn.rollback()
            raise ApiError(409, "no_previous_model", str(exc)) from None
        conn.commit()
    call.services.forget_search_model()
    return ModelAnswer(key=model.key, state=model.state.value)


def retire_model_route(call: Call) -> RetireAnswer:
    body = json_body(call.request, ModelKeyRequest, what="model key")
    with call.services.db.connection() as conn:
        try:
            deleted = retire_model(conn, body.key)
        except ModelNotFound:
            conn.rollback()
            raise ApiError(404, "not_found", "no such model") from None
        except ModelConflict:
            conn.rollback()
            raise ApiError(409, "model_active", "the active model cannot be retired; activate another first") from None
        conn.commit()
    call.services.forget_search_model()
    return RetireAnswer(key=body.key, vectors_deleted=deleted)
