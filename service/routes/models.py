"""The models this service holds."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

from fastapi import APIRouter
from fastapi import Path as PathParam

from service.deps import AUTH, RegistryDep, resolve_model
from service.schemas import ModelDetail, ModelsResponse, ModelSummary, Problem

if TYPE_CHECKING:
    from service.loaded import LoadedModel

router = APIRouter(prefix="/models", tags=["models"], dependencies=AUTH)
ERRORS: dict[int | str, dict] = {
    401: {"model": Problem, "description": "missing or wrong API key"},
}


def _summary(lm: LoadedModel) -> ModelSummary:
    cfg = lm.model.cfg
    return ModelSummary(
        name=lm.name,
        version=lm.version,
        dynamics=cfg.dynamics,
        obs_dim=cfg.obs_dim,
        latent_dim=cfg.latent_dim,
        n_minima=None if lm.analysis is None else len(lm.analysis.minima),
        streams=lm.streams,
        labels_from=lm.labels_from,
        analysis=lm.analysis_source,
        load_seconds=round(lm.load_seconds, 3),
    )


@router.get(
    "",
    responses=ERRORS,
    summary="List the models",
    description="The models that serve (with their dimensions, number of states and where "
    "their labels come from), the default model, the models still loading and those that "
    "failed to load, with why.",
)
async def list_models(reg: RegistryDep) -> ModelsResponse:
    return ModelsResponse(
        default=reg.default,
        models=[_summary(lm) for lm in reg.models.values()],
        loading={name: s.describe() for name, s in sorted(reg.loading.items())},
        failed=reg.failed,
    )


@router.get(
    "/{name}",
    responses={
        **ERRORS,
        404: {"model": Problem, "description": "no such model"},
        503: {"model": Problem, "description": "the model is loading (see Retry-After)"},
    },
    summary="One model, in full",
    description="A model's summary, its configuration, its training record and its model "
    "card (Markdown: what it was trained on and what it measured).",
)
async def get_model(
    reg: RegistryDep,
    name: Annotated[
        str,
        PathParam(
            min_length=1,
            max_length=128,
            description="the model's name (its directory's)",
            examples=["exp2-underdamped"],
        ),
    ],
) -> ModelDetail:
    lm = resolve_model(reg, name)
    return ModelDetail(
        **_summary(lm).model_dump(),
        config=lm.model.cfg.model_dump(),
        meta=lm.meta,
        card=lm.card,
    )
