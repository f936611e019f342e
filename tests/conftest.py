import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
# papermill must find *this* venv's `drawlab` kernel (installed with --sys-prefix by ./drawlab setup) before any
# user-level one another checkout may have registered
os.environ["JUPYTER_PATH"] = os.pathsep.join(p for p in (str(Path(sys.prefix) / "share" / "jupyter"),
                                                          os.environ.get("JUPYTER_PATH")) if p)


def run(cmd, timeout=600, **kw):
    "Run a command from the project root; on failure show its output."
    env = {**os.environ, "PYTHONUNBUFFERED": "1", **kw.pop("env", {})}
    p = subprocess.run(cmd, cwd=kw.pop("cwd", ROOT), capture_output=True, text=True, timeout=timeout, env=env, **kw)
    assert p.returncode == 0, f"{cmd} exited {p.returncode}\n--- stdout\n{p.stdout[-6000:]}\n--- stderr\n{p.stderr[-6000:]}"
    return p


@pytest.fixture
def outputs(tmp_path, monkeypatch):
    "A private outputs/ and data/ root for the test."
    monkeypatch.setenv("DRAWLAB_OUTPUTS", str(tmp_path / "outputs"))
    monkeypatch.setenv("DRAWLAB_DATA", str(tmp_path / "data"))
    return tmp_path / "outputs"


def assert_one_step_lowers_each_loss(system, batch, n: int, check_terms=None):
    """For each phase of `system`: its loss on a fixed batch of `n` samples, one step of its optimiser, the loss again
    (the same noise and draws: the same step's context), lower. `check_terms(phase, terms)` may look at the terms."""
    import torch
    from lib.train import Nets, StepContext
    opts, nets = system.optimizers(), Nets(**system.nets)
    for phase in system.phases:
        ctx = lambda: StepContext(step=0, phase=phase, seed=0, global_batch=n, offset=0, micro_batch=n, device=torch.device("cpu"))
        torch.manual_seed(1); before, terms = system.loss(phase, batch, nets, ctx())
        if check_terms: check_terms(phase, terms)
        opts[phase.net].zero_grad(); before.backward(); opts[phase.net].step()
        torch.manual_seed(1); after, _ = system.loss(phase, batch, nets, ctx())
        assert after.item() < before.item(), (phase.name, before.item(), after.item())
