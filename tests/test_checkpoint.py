import dataclasses
import json

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from nld import checkpoint, markov
from nld.errors import CheckpointError
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
    checkpoint.save(tmp, m, meta={"note": "x"})
    back = checkpoint.load(tmp)
    assert back.cfg == m.cfg
    for (k, a), (k2, b) in zip(m.state_dict().items(), back.state_dict().items(), strict=True):
        assert k == k2 and torch.equal(a, b)
    x = torch.randn(2, 5, 3)
    torch.testing.assert_close(m.posterior(x, sample=False).y, back.posterior(x, sample=False).y)


def test_truncated_weights_are_refused(tmp_path):
    checkpoint.save(tmp_path, _model())
    w = tmp_path / checkpoint.WEIGHTS
    w.write_bytes(w.read_bytes()[:-100])
    with pytest.raises(CheckpointError, match="corrupt or truncated"):
        checkpoint.load(tmp_path)


def test_missing_and_mismatched(tmp_path):
    with pytest.raises(CheckpointError, match="missing"):
        checkpoint.load(tmp_path)
    checkpoint.save(tmp_path, _model())
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
    checkpoint.save(tmp_path, _model(dynamics="nsde"))
    other = tmp_path / "other"
    checkpoint.save(other, _model(dynamics="overdamped"))
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


def test_the_state_chain_round_trips_in_the_weights_file(tmp_path):
    m = _model(basin_head=True)
    m.chain = _chain()
    m.set_fitted_minima(torch.from_numpy(m.chain.positions))
    checkpoint.save(tmp_path, m)
    back = checkpoint.load(tmp_path)
    assert back.chain is not None
    for f in dataclasses.fields(StateChain):
        np.testing.assert_array_equal(getattr(back.chain, f.name), getattr(m.chain, f.name))
    m.chain = _chain(dim=4)  # emissions in another dimension than the model's observations
    checkpoint.save(tmp_path, m)
    with pytest.raises(CheckpointError, match=r"state chain means has shape \(2, 4\)"):
        checkpoint.load(tmp_path)
    bad = _chain()
    m.chain = dataclasses.replace(bad, covariances=-bad.covariances)
    checkpoint.save(tmp_path, m)
    with pytest.raises(CheckpointError, match="not positive definite"):
        checkpoint.load(tmp_path)
    m.chain = dataclasses.replace(bad, positions=bad.positions + 1.0)  # not the head's minima
    checkpoint.save(tmp_path, m)
    with pytest.raises(CheckpointError, match="not the basin head's minima"):
        checkpoint.load(tmp_path)


def test_the_trainer_state_checks_its_chain_as_the_checkpoint_does(tmp_path):
    """`--resume` reads the chain from the trainer state: the same checks apply."""
    from nld.fitting.state import Progress, load_state, save_state

    def resume(into: NLDModel) -> Progress:
        opts = {"all": torch.optim.Adam(into.parameters())}
        return load_state(tmp_path, into, opts, torch.Generator())

    m = _model(basin_head=True)
    m.chain = _chain()
    m.set_fitted_minima(torch.from_numpy(m.chain.positions))
    opts = {"all": torch.optim.Adam(m.parameters())}
    save_state(tmp_path, m, opts, torch.Generator().manual_seed(0), Progress(iteration=3))
    back = _model(basin_head=True)
    assert resume(back).iteration == 3 and back.chain is not None
    np.testing.assert_array_equal(back.chain.log_trans, m.chain.log_trans)
    m.chain = dataclasses.replace(m.chain, positions=m.chain.positions + 1.0)
    save_state(tmp_path, m, opts, torch.Generator(), Progress(iteration=3))
    with pytest.raises(CheckpointError, match="not the basin head's minima"):
        resume(_model(basin_head=True))
