"""The models this service holds."""

from __future__ import annotations

from fastapi import APIRouter

from service.deps import AUTH, RegistryDep, resolve_model
from service.registry import LoadedModel
from service.schemas import ModelDetail, ModelsResponse, ModelSummary, Problem

router = APIRouter(prefix="/models", tags=["models"], dependencies=AUTH)
ERRORS: dict[int | str, dict] = {
    401: {"model": Problem, "description": "missing or wrong API key"},
    503: {"model": Problem, "description": "models still loading"},
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
    )


@router.get("", responses=ERRORS)
async def list_models(reg: RegistryDep) -> ModelsResponse:
    return ModelsResponse(
        default=reg.default,
        models=[_summary(lm) for lm in reg.models.values()],
        failed=reg.failed,
    )


@router.get(
    "/{name}", responses={**ERRORS, 404: {"model": Problem, "description": "no such model"}}
)
async def get_model(name: str, reg: RegistryDep) -> ModelDetail:
    lm = resolve_model(reg, name)
    return ModelDetail(
        **_summary(lm).model_dump(),
        config=lm.model.cfg.model_dump(),
        meta=lm.meta,
        card=lm.card,
    )
