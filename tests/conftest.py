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
