import dataclasses
import json

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from nld import checkpoint, markov
from nld.errors import CheckpointError
from nld.fitted import Fitted
from nld.model import ModelConfig, NLDModel
from nld.state_chain import StateChain


def _model(**kw) -> NLDModel:
    torch.manual_seed(0)
    return NLDModel(ModelConfig(obs_dim=3, gru_hidden=8, context_dim=4, energy_hidden=[8], **kw))


@settings(max_examples=12, deadline=None)
@given(
    dynamics=st.sampled_from(["overdamped", "underdamped", "nsde"]),
    latent=st.integers(1, 3),
    noise=st.sampled_from(["fixed", "learned", "full"]),
    decoder=st.sampled_from(["linear", "mlp"]),
)
def test_roundtrip_is_the_identity(tmp_path_factory, dynamics, latent, noise, decoder):
    tmp = tmp_path_factory.mktemp("ck")
    m = _model(dynamics=dynamics, latent_dim=latent, decoder_noise=noise, decoder=decoder)
    with torch.no_grad():
        for p in m.parameters():
            p.add_(torch.randn_like(p))
    checkpoint.save(tmp, m, Fitted.none(m.cfg), meta={"note": "x"})
    back, fitted = checkpoint.load(tmp)
    assert back.cfg == m.cfg and fitted.classes == 0 and fitted.chain is None
    for (k, a), (k2, b) in zip(m.state_dict().items(), back.state_dict().items(), strict=True):
        assert k == k2 and torch.equal(a, b)
    x = torch.randn(2, 5, 3)
    torch.testing.assert_close(m.posterior(x, sample=False).y, back.posterior(x, sample=False).y)


def _save(where, m: NLDModel) -> None:
    checkpoint.save(where, m, Fitted.none(m.cfg))


def test_truncated_weights_are_refused(tmp_path):
    _save(tmp_path, _model())
    w = tmp_path / checkpoint.WEIGHTS
    w.write_bytes(w.read_bytes()[:-100])
    with pytest.raises(CheckpointError, match="corrupt or truncated"):
        checkpoint.load(tmp_path)


def test_missing_and_mismatched(tmp_path):
    with pytest.raises(CheckpointError, match="missing"):
        checkpoint.load(tmp_path)
    _save(tmp_path, _model())
    doc = json.loads((tmp_path / checkpoint.CONFIG).read_text())
    doc["model"]["latent_dim"] = 3
    (tmp_path / checkpoint.CONFIG).write_text(json.dumps(doc))
    with pytest.raises(CheckpointError, match="shape"):
        checkpoint.load(tmp_path)
    doc["model"]["latent_dim"] = 2
    doc["model"]["typo"] = 1
    (tmp_path / checkpoint.CONFIG).write_text(json.dumps(doc))
    with pytest.raises(CheckpointError, match="invalid model config"):
        checkpoint.load(tmp_path)
    (tmp_path / checkpoint.CONFIG).write_text("{not json")
    with pytest.raises(CheckpointError, match="not valid JSON"):
        checkpoint.load(tmp_path)


def test_other_architecture_weights_are_refused(tmp_path):
    _save(tmp_path, _model(dynamics="nsde"))
    other = tmp_path / "other"
    _save(other, _model(dynamics="overdamped"))
    (other / checkpoint.WEIGHTS).write_bytes((tmp_path / checkpoint.WEIGHTS).read_bytes())
    with pytest.raises(CheckpointError, match="do not match"):
        checkpoint.load(other)


def test_no_pickle_anywhere():
    """Nothing unpickles: no pickle.load(s), and the one torch.load (the dynvae importer)
    is the tensor-only `weights_only=True` loader."""
    import pathlib
    import re

    root = pathlib.Path(__file__).resolve().parents[1]
    files = [
        *root.glob("nld/**/*.py"),
        *root.glob("training/**/*.py"),
        *root.glob("service/**/*.py"),
    ]
    assert files
    for path in files:
        text = path.read_text()
        assert not re.search(r"pickle\.loads?\(|Unpickler\(", text), path
        for call in re.findall(r"torch\.load\([^)]*\)", text):
            assert "weights_only=True" in call, (path, call)


def _chain(k: int = 2, dim: int = 3, latent: int = 2) -> StateChain:
    rng = np.random.default_rng(0)
    a = rng.normal(size=(k, dim, dim))
    return StateChain(
        positions=rng.normal(size=(k, latent)).astype(np.float32).astype(np.float64),
        means=rng.normal(size=(k, dim)),
        covariances=a @ a.transpose(0, 2, 1) + np.eye(dim),
        log_init=np.log(np.full(k, 1 / k)),
        log_trans=markov.sticky(k, 10.0),
        evidence=-3.5,
        rounds=4,
    )


def _fitted(m: NLDModel) -> Fitted:
    chain = _chain()
    fitted = Fitted.none(m.cfg)
    fitted.set_minima(torch.from_numpy(chain.positions))
    fitted.set_chain(chain)
    return fitted


def test_the_fitted_minima_and_chain_round_trip_in_the_weights_file(tmp_path):
    m = _model(basin_head=True)
    fitted = _fitted(m)
    assert fitted.chain is not None
    checkpoint.save(tmp_path, m, fitted)
    _, stored = checkpoint.load(tmp_path)
    assert torch.equal(stored.minima, fitted.minima) and stored.chain is not None
    for f in dataclasses.fields(StateChain):
        np.testing.assert_array_equal(getattr(stored.chain, f.name), getattr(fitted.chain, f.name))
    # The file keeps the basin table where the network's buffers were: a fixed-size table and
    # its count, beside the weights.
    tensors = checkpoint.read_tensors(tmp_path / checkpoint.WEIGHTS)
    assert tensors["basin_minima"].shape == (16, 2) and int(tensors["basin_count"]) == 2
    # Damaged files, written as they could be (the chain assigned without its check):
    bad = fitted.chain
    for chain, message in (
        (_chain(dim=4), r"state chain means has shape \(2, 4\)"),  # not the model's D
        (dataclasses.replace(bad, covariances=-bad.covariances), "not positive definite"),
        (dataclasses.replace(bad, positions=bad.positions + 1.0), "not the basin head's minima"),
    ):
        fitted.chain = chain
        checkpoint.save(tmp_path, m, fitted)
        with pytest.raises(CheckpointError, match=message):
            checkpoint.load(tmp_path)


def test_a_fitted_chain_must_stand_for_the_minima():
    fitted = _fitted(_model(basin_head=True))
    chain = fitted.chain
    assert chain is not None
    with pytest.raises(ValueError, match="not the basin head's minima"):
        fitted.set_chain(dataclasses.replace(chain, positions=chain.positions + 1.0))
    fitted.set_minima(torch.zeros(1, 2))  # new minima: the chain over the old ones goes
    assert fitted.chain is None
    with pytest.raises(ValueError, match=r"room for 0\.\.16 minima, not 17"):
        fitted.set_minima(torch.zeros(17, 2))


def test_the_trainer_state_checks_its_chain_as_the_checkpoint_does(tmp_path):
    """`--resume` reads the chain from the trainer state: the same checks apply."""
    from nld.fitting.state import Progress, load_state, save_state

    def resume(into: NLDModel, fitted: Fitted) -> Progress:
        opts = {"all": torch.optim.Adam(into.parameters())}
        return load_state(tmp_path, into, fitted, opts, torch.Generator())

    m = _model(basin_head=True)
    fitted = _fitted(m)
    assert fitted.chain is not None
    opts = {"all": torch.optim.Adam(m.parameters())}
    save_state(tmp_path, m, fitted, opts, torch.Generator().manual_seed(0), Progress(iteration=3))
    back = _model(basin_head=True)
    into = Fitted.none(back.cfg)
    assert resume(back, into).iteration == 3 and into.chain is not None
    assert torch.equal(into.minima, fitted.minima)
    np.testing.assert_array_equal(into.chain.log_trans, fitted.chain.log_trans)
    fitted.chain = dataclasses.replace(fitted.chain, positions=fitted.chain.positions + 1.0)
    save_state(tmp_path, m, fitted, opts, torch.Generator(), Progress(iteration=3))
    with pytest.raises(CheckpointError, match="not the basin head's minima"):
        resume(_model(basin_head=True), into)
