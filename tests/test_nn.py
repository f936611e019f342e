"""Integration checks for lib.nn that the notebooks' cells do not cover: what the training engine does with
these layers (deep-copy for the EMA generator, state-dict checkpoints through atomic_torch_save) and
JSON configs that rebuild the same modules."""
import copy
import inspect
import json

import pytest
import torch

from lib.core import atomic_torch_save
from lib.nn.attention import MultiHeadCrossAttention, SelfAttention2d
from lib.nn.conditioning import ConditioningAugmentation, GraphConvNet
from lib.nn.layers import ResBlockDown, ResBlockUp
from lib.nn.norm import SPADE, AdaIN, ConditionalBatchNorm2d


def _cases():
    "(class, JSON config, example inputs) for every public module."
    x = torch.randn(2, 16, 8, 8)
    return [
        (ResBlockUp, dict(in_channels=16, out_channels=8, norm="cbn_class", cond_dim=5, sn=True), (x, torch.tensor([1, 3]))),
        (ResBlockUp, dict(in_channels=16, out_channels=8, norm="spade", cond_dim=3, sn=True), (x, torch.rand(2, 3, 4, 4))),
        (ResBlockDown, dict(in_channels=16, out_channels=32, first=True, norm="batch", sn=True), (x,)),
        (ConditionalBatchNorm2d, dict(num_features=16, cond_dim=6), (x, torch.randn(2, 6))),
        (AdaIN, dict(num_features=16, cond_dim=6), (x, torch.randn(2, 6))),
        (SPADE, dict(num_features=16, label_channels=3, hidden=8, sn=True), (x, torch.rand(2, 3, 8, 8))),
        (SelfAttention2d, dict(channels=16, pool=True, sn=True), (x,)),
        (MultiHeadCrossAttention, dict(channels=16, memory_dim=12, num_heads=4), (x, torch.randn(2, 5, 12))),
        (ConditioningAugmentation, dict(in_dim=12, out_dim=4, glu=True, sn=True), (torch.randn(2, 12), False)),
        (GraphConvNet, dict(dim=8, num_layers=2, hidden=16), (torch.randn(4, 8), torch.randn(3, 8),
                                                              torch.tensor([[0, 0, 1], [1, 1, 2], [3, 0, 2]]))),
    ]


def _out(y):
    "First tensor of a module's output (some return tuples)."
    return y[0] if isinstance(y, tuple) else y


def _perturb(m):
    "Move every parameter and buffer off its initial value so a round trip that loses state would show."
    with torch.no_grad():
        for p in m.parameters(): p.add_(0.1 * torch.randn_like(p))
        if hasattr(m, "gamma"): m.gamma.fill_(0.5)


@pytest.mark.parametrize("cls,cfg,inputs", _cases(), ids=lambda v: getattr(v, "__name__", ""))
def test_config_json_and_checkpoint_round_trip(cls, cfg, inputs, tmp_path):
    # constructor arguments are primitives: the config survives JSON and rebuilds the same architecture
    assert all(isinstance(v, (int, float, bool, str)) for v in cfg.values())
    assert set(cfg) <= set(inspect.signature(cls).parameters)
    torch.manual_seed(0)
    m = cls(**cfg); _perturb(m)
    for _ in range(3): m(*inputs)  # training-mode forwards: spectral-norm vectors and BN statistics move
    m.eval()
    atomic_torch_save({"config": cfg, "model": m.state_dict()}, tmp_path / "ck.pt")
    ck = torch.load(tmp_path / "ck.pt")
    m2 = cls(**json.loads(json.dumps(ck["config"])))
    m2.load_state_dict(ck["model"]); m2.eval()
    torch.testing.assert_close(_out(m2(*inputs)), _out(m(*inputs)))


@pytest.mark.parametrize("cls,cfg,inputs", _cases(), ids=lambda v: getattr(v, "__name__", ""))
def test_deepcopy_for_ema(cls, cfg, inputs):
    # the engine's EMA generator is a deep copy; it must be independent of the original (spectral-norm
    # parametrisations included) and compute the same function until the original trains on
    torch.manual_seed(0)
    m = cls(**cfg); _perturb(m); m.eval()
    ema = copy.deepcopy(m)
    torch.testing.assert_close(_out(ema(*inputs)), _out(m(*inputs)))
    with torch.no_grad():
        for p in m.parameters(): p.add_(0.5)
    assert not torch.allclose(_out(ema(*inputs)), _out(m(*inputs)))
    assert all(a.data_ptr() != b.data_ptr() for a, b in zip(m.parameters(), ema.parameters()))
