"""Every module notebook's own test cells (nbdev-test), and papermill runs of the training notebooks."""
import json
import re
import sys
import tomllib

import pytest

from conftest import BIN, ROOT, run

CFG = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["nbdev"]
SKIP = re.compile(CFG["skip_file_re"])
NOTEBOOKS = sorted(p for p in (ROOT / "nbs").rglob("*.ipynb")
                   if not SKIP.match(p.name) and ".ipynb_checkpoints" not in p.parts)


@pytest.mark.parametrize("nb", NOTEBOOKS, ids=[str(p.relative_to(ROOT / "nbs")) for p in NOTEBOOKS])
def test_notebook_cells(nb, tmp_path):
    # Each notebook in its own process, with private data/outputs roots, like `nbdev-test` does for all of them.
    run([str(BIN / "nbdev-test"), str(nb)], timeout=900,
        env={"DRAWLAB_OUTPUTS": str(tmp_path / "outputs"), "DRAWLAB_DATA": str(tmp_path / "data")})


def papermill(nb, out, cwd=ROOT / "nbs", **params):
    args = [str(BIN / "papermill"), str(ROOT / "nbs" / nb), str(out), "-k", "drawlab", "--cwd", str(cwd)]
    for k, v in params.items():   # lists and dicts as YAML (-p would hand the notebook their text)
        args += ["-y", json.dumps({k: v})] if isinstance(v, (list, dict)) else ["-p", k, str(v)]
    return run(args, timeout=900)


def test_train_toy2d_notebook_two_processes_and_resume(tmp_path):
    out = tmp_path / "runs"
    common = dict(run_name="pm", out_root=out, preset="smoke", num_processes=2, eval_every=10, ckpt_every=10)
    papermill("train_toy2d.ipynb", tmp_path / "a.ipynb", steps=20, **common)
    log = (out / "pm" / "log.txt").read_text()
    assert "on 2 process(es)" in log
    papermill("train_toy2d.ipynb", tmp_path / "b.ipynb", steps=30, **common)  # the same run, longer: resumes
    assert "resumed from" in (out / "pm" / "log.txt").read_text()
    steps = [r["step"] for r in map(json.loads, (out / "pm" / "metrics.jsonl").read_text().splitlines()) if r["kind"] == "eval"]
    assert steps == [10, 20, 30], steps  # the first run evaluated at 10 and 20 (its end), the resumed one at 30
    assert (out / "pm" / "samples" / "step-00000030.png").exists()


def test_train_notebook_rejects_bad_parameters(tmp_path):
    # An unknown preset names the known ones; bad values are each named with what was expected, before any work.
    with pytest.raises(AssertionError, match=r"unknown preset 'nope'; known presets: \['cpu-demo', 'smoke'\]"):
        papermill("train_toy2d.ipynb", tmp_path / "x.ipynb", run_name="bad", out_root=tmp_path, preset="nope")
    with pytest.raises(AssertionError, match=r"the toy2d parameters: 2 bad value\(s\)") as err:
        papermill("train_toy2d.ipynb", tmp_path / "y.ipynb", run_name="bad", out_root=tmp_path, preset="smoke",
                  steps=-1, lr_g=0)
    assert "steps = -1: expected" in str(err.value) and "lr_g = 0: expected" in str(err.value)
    assert not (tmp_path / "bad").exists()  # refused before the run folder was made
