"""A model as the service holds it: its checkpoint, its landscape analysis, and what the
routes compute with them (labels of a stream's chunk, energy on a grid, prior paths).

The routes call these methods and never import torch themselves: this module, and what it
imports, is loaded by the loader's thread (`service.registry`), not at start-up.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field, replace
from functools import cached_property
from typing import Any

import numpy as np
import torch

from nld.analysis.grid import Grid, Plane, box_grid, plane_grid, plane_through
from nld.device import device_of
from nld.errors import NonFiniteError
from nld.estimator import NLD, from_parts
from nld.fitted import Fitted
from nld.inference import LABELS_FROM_POSITION, basin_labels, class_source
from nld.landscape import Analysis, finite_or_none
from nld.model import NLDModel
from nld.simulate import simulate_phase, simulate_prior
from service.schemas import (
    MinimaResponse,
    MinimumOut,
    OccupancyMethod,
    OccupancyResponse,
    SaddleOut,
    TransitionsResponse,
)

DESCRIPTIONS = {
    "sampling": "(a) MALA samples of exp(-beta E), each assigned to its basin",
    "zeroth": "(b) exp(-beta E(x_i)) at the minima, normalised",
    "second": "(c) Laplace: exp(-beta E(x_i)) det(beta H_i)^(-1/2), normalised",
    "quadrature": "(d) grid quadrature of exp(-beta E) over each basin (latent dim <= 3)",
}

IMAGE_RESOLUTION, IMAGE_MARGIN = 80, 0.5  # the page's first grid (PlaneGrid's default margin)
_PYPLOT = threading.Lock()  # matplotlib's pyplot is not thread-safe


@dataclass(frozen=True)
class Chunk:
    labels: np.ndarray  # [..., T]
    positions: np.ndarray  # [..., T, d]
    energies: np.ndarray  # [..., T]
    h: np.ndarray  # float32, the GRU state after the chunk
    # [..., K (+ D)] what the state chain's filter carries: its log marginal after the chunk
    # (and, for a dynamic chain, the last observation)
    belief: np.ndarray | None
    proba: np.ndarray | None = None  # [..., T, K] each minimum's probability (chain or head)


@dataclass
class LoadedModel:
    name: str
    sha256: str  # of the weights file
    model: NLDModel
    fitted: Fitted  # the basin head's minima and the state chain (nld.fitted)
    analysis: Analysis | None  # None for an NSDE baseline (no energy)
    meta: dict[str, Any]
    card: str | None  # MODEL_CARD.md, if the directory has one
    load_seconds: float
    analysis_source: str  # "stored" (read from a file) or "computed" (and where it went)
    # The basin head's classes as indices of the analysis' minima (nld.inference.head_order);
    # None: labels are the basins of the readout positions.
    head_order: np.ndarray | None = None
    warnings: list[str] = field(default_factory=list)  # the analysis' and the split test's

    @property
    def version(self) -> str:
        return self.sha256[:16]

    @property
    def labels_from(self) -> str | None:
        if self.analysis is None:
            return None
        return LABELS_FROM_POSITION if self.head_order is None else class_source(self.fitted)

    @property
    def streams(self) -> bool:
        """Whether chunks can continue a stream (a readout head on the GRU context)."""
        return self.model.readout is not None and self.analysis is not None

    # -- streaming ------------------------------------------------------------------------
    @torch.inference_mode()
    def label_chunk(
        self, x: np.ndarray, h: np.ndarray | None, belief: np.ndarray | None = None
    ) -> Chunk:
        """Label observations x [T, D] (one stream) or [B, T, D] (B streams stepped together,
        h [1, B, H], belief [B, ...]) that continue the streams whose GRU state is h and whose
        state chain's filter carries `belief` (StateChain.filter; None at the start of a
        stream): the chain's or the basin head's class, or the basin of the readout position
        (looked up without gradient flow), and the model's own float32 energy there."""
        a = self.analysis
        assert a is not None and a.index is not None
        energy_fn = self.model.prior.energy
        assert energy_fn is not None
        batched = x.ndim == 3
        on = device_of(self.model)
        xt = torch.from_numpy(x).to(on)
        h0 = None if h is None else torch.from_numpy(h).to(on)
        chain, new_belief, log_p = self.fitted.chain, None, None
        # The chain (whose states are the head's minima: checkpoint.load) labels by itself:
        # the head's classes are not needed then.
        head = self.fitted.classes if chain is None else 0
        r, head_log_p, h_new = self.model.read(xt if batched else xt[None], h0, classes=head)
        if chain is not None:
            xs = x if batched else x[None]
            log_p, _, carried = chain.filter(xs, belief)
            new_belief = carried if batched else carried[0]
        elif head_log_p is not None:
            log_p = head_log_p.cpu().numpy()
        classes = None if log_p is None else log_p.argmax(-1)
        proba = None
        if log_p is not None and self.head_order is not None:  # as the analysis' minima
            proba = np.empty_like(log_p)
            proba[..., self.head_order] = np.exp(log_p)
            proba = proba if batched else proba[0]
        if not batched:
            r = r[0]
            classes = None if classes is None else classes[0]
        e = energy_fn(r)
        if not (torch.isfinite(r).all() and torch.isfinite(e).all()):
            raise NonFiniteError(
                "the model produced non-finite values for these observations "
                "(are they on the scale of its training data?)"
            )
        z = r.cpu().numpy().astype(np.float64)
        index = a.index
        labels, _ = basin_labels(
            self.head_order,
            classes,
            z,
            lambda p: index.assign(p, exact=False),
        )
        energies = e.cpu().numpy().astype(np.float64)
        return Chunk(labels, z, energies, h_new.cpu().numpy(), new_belief, proba)

    # -- a whole recording ----------------------------------------------------------------
    @cached_property
    def estimator(self) -> NLD:
        return from_parts(self.model, self.fitted, self.meta, self.analysis)

    def label_recording(
        self, x: np.ndarray, *, offline: bool, method: str
    ) -> tuple[np.ndarray, np.ndarray | None, np.ndarray]:
        """Labels [T], each state's probabilities [T, K] (None where the model gives none)
        and latent positions [T, d] of one recording x [T, D]: online, or from the whole
        recording (the model's chain smoothed, or its Viterbi path). NLDError where the model
        cannot (offline labels without a chain over its minima)."""
        with torch.inference_mode():
            found = self.estimator.segment(x, online=not offline, method=method)
            return found.labels, found.probabilities, found.latent

    # -- the landscape --------------------------------------------------------------------
    def energy_box(self, lo: list[float], hi: list[float], resolution: int) -> Grid:
        assert self.analysis is not None and self.analysis.index is not None
        return box_grid(self.analysis.index.energy, np.array(lo), np.array(hi), resolution)

    def energy_plane(
        self, resolution: int, margin: float, offset: float = 0.0
    ) -> tuple[Grid, Plane]:
        """E on the plane through the minima (their PCA plane beyond three), over their
        extent widened by `margin` of their spread, moved `offset` along its normal (latent
        dimension 3); and the plane."""
        assert self.analysis is not None and self.analysis.index is not None
        centres = np.stack([m.position for m in self.analysis.minima])
        plane = plane_through(centres)
        if offset:
            normal = np.cross(plane.basis[0], plane.basis[1])
            plane = replace(plane, origin=plane.origin + offset * normal / np.linalg.norm(normal))
        uv = plane.project(centres)
        lo, hi = uv.min(0), uv.max(0)
        pad = (margin * np.maximum(hi - lo, 1e-3).max()) + (0 if len(centres) > 1 else 1.0)
        extent = (lo[0] - pad, hi[0] + pad, lo[1] - pad, hi[1] + pad)
        return plane_grid(self.analysis.index.energy, plane, extent, resolution), plane

    @cached_property
    def landscape_png(self) -> bytes:
        """The landscape as a PNG: E on the plane through the minima (along the axis for
        latent dimension 1) with the minima, saddles and minimum energy paths; the landscape
        page shows it while Plotly.js loads. matplotlib is imported on the first call."""
        from nld import plots

        a = self.analysis
        assert a is not None
        with _PYPLOT:
            if self.model.cfg.latent_dim == 1:
                xs = [m.position[0] for m in a.minima]
                pad = max(max(xs) - min(xs), 1.0) * 0.5
                line = self.energy_box([min(xs) - pad], [max(xs) + pad], 400)
                return plots.png(plots.profile(line, a.minima))
            grid, plane = self.energy_plane(IMAGE_RESOLUTION, IMAGE_MARGIN)
            return plots.png(plots.contour(grid, plane, a.minima, a.saddles))

    @cached_property
    def minima_response(self) -> MinimaResponse:
        a = self.analysis
        assert a is not None
        regimes = self.estimator.regime_of_state_  # indexes the analysis' minima, as here
        return MinimaResponse(
            model=self.name,
            version=self.version,
            beta=a.beta,
            minima=[
                MinimumOut(
                    position=m.position.tolist(),
                    energy=m.energy,
                    hessian_eigenvalues=m.hessian_eigenvalues.tolist(),
                    occupancy={k: None if v is None else v[i] for k, v in a.occupancy.items()},
                    regime=None if regimes is None else int(regimes[i]),
                )
                for i, m in enumerate(a.minima)
            ],
            warnings=self.warnings,
        )

    def occupancy_response(self, method: OccupancyMethod) -> OccupancyResponse | None:
        """One estimate of the occupancies; None where it is not computed."""
        a = self.analysis
        assert a is not None
        values = a.occupancy[method]
        if values is None:
            return None
        return OccupancyResponse(
            model=self.name,
            version=self.version,
            method=method,
            description=DESCRIPTIONS[method],
            occupancy=values,
            standard_error=a.occupancy_error.get(method),
        )

    def _chain_dwell(self) -> list[float | None] | None:
        """The dwell times of the hidden Markov chain over the minima (the state chain, else
        the head chain), in the analysis' order of the minima; None without one."""
        chain = self.fitted.chain or self.fitted.head_chain
        if chain is None or self.head_order is None:
            return None
        steps = chain.dwell_steps()
        if len(steps) != len(self.head_order):
            return None
        dwell = np.empty(len(self.head_order))
        dwell[self.head_order] = steps
        return finite_or_none(dwell)

    @cached_property
    def transitions_response(self) -> TransitionsResponse:
        a = self.analysis
        assert a is not None
        return TransitionsResponse(
            model=self.name,
            version=self.version,
            saddles=[
                SaddleOut(
                    between=s.pair,
                    position=s.position.tolist(),
                    energy=s.energy,
                    hessian_eigenvalues=s.hessian_eigenvalues.tolist(),
                    barriers=s.barrier(a.minima),
                    barrier_top_ratio=top,
                    path=s.path.tolist(),
                )
                for s, top in zip(a.saddles, a.barrier_tops, strict=True)
            ],
            clock=a.clock,
            rates=[finite_or_none(row) for row in a.rates],
            dwell_times=finite_or_none(a.dwell_steps),
            dwell_times_simulated=finite_or_none(a.dwell_simulated),
            dwell_times_chain=self._chain_dwell(),
            transitions_simulated=a.transitions_simulated.tolist(),
            warnings=a.warnings,
        )

    # -- the prior ------------------------------------------------------------------------
    @torch.inference_mode()
    def sample(
        self,
        n_paths: int,
        n_steps: int,
        dt: float,
        *,
        seed: int,
        start: list[float] | None,
        velocities: bool,
        observed: bool,
    ) -> tuple[np.ndarray, np.ndarray | None]:
        """Prior paths [n_paths, n_steps + 1, d] (or, `observed`, the decoder's mean
        observation at each position [..., D]) and, `velocities`, dq/dt of underdamped paths;
        raises NonFiniteError where the prior diverged."""
        q0 = None if start is None else np.asarray(start)
        if velocities:
            paths, vel = simulate_phase(self.model, n_paths, n_steps, dt, seed=seed, start=q0)
        else:
            paths, vel = simulate_prior(self.model, n_paths, n_steps, dt, seed=seed, start=q0), None
        if not (np.isfinite(paths).all() and (vel is None or np.isfinite(vel).all())):
            raise NonFiniteError(
                "the prior diverged (non-finite positions): use a smaller dt or another start"
            )
        if observed:
            paths = self.decode(paths)
        return paths, vel

    def decode(self, positions: np.ndarray) -> np.ndarray:
        """The decoder's mean observation [..., D] at latent positions [..., d], in the units
        of the training data (no observation noise)."""
        m = self.model
        with torch.inference_mode():
            mean = m.decoder.mean(torch.from_numpy(positions).float().to(device_of(m)))
            return (mean * m.x_std + m.x_mean).cpu().double().numpy()
