"""Every module notebook's own test cells (nbdev-test; the ones that train a small run of their own through papermill, shorter),
and papermill runs of the training notebooks."""
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


# Notebooks that train a small run of their own before they show it, and assert nothing about its quality: run here
# through papermill with fewer steps, so every cell still runs on a run of the same kind, only a shorter one. The
# defaults are what a reader runs. (quickstart stays at its defaults: it asserts what its small runs reach.)
SHORTER = {
    "tutorials/scene_graph_to_image.ipynb": dict(steps=40),
    "tutorials/spoken_words.ipynb": dict(steps=40, items=120),
    "tutorials/semantic_pyramid_editing.ipynb": dict(classifier_steps=40, steps=40),
    "semantic_pyramid_applications.ipynb": dict(classifier_steps=40, steps=40),
    "tutorials/caption_to_image.ipynb": dict(damsm_steps=60, steps=60),
    "tutorials/draw_with_lattegan.ipynb": dict(steps=20, warm_start_steps=50),
}


@pytest.mark.parametrize("nb", NOTEBOOKS, ids=[str(p.relative_to(ROOT / "nbs")) for p in NOTEBOOKS])
def test_notebook_cells(nb, tmp_path):
    # Each notebook in its own process, with private data/outputs roots, like `nbdev-test` does for all of them.
    env = {"DRAWLAB_OUTPUTS": str(tmp_path / "outputs"), "DRAWLAB_DATA": str(tmp_path / "data")}
    rel = str(nb.relative_to(ROOT / "nbs"))
    if rel in SHORTER: papermill(rel, tmp_path / nb.name, cwd=nb.parent, env=env, **SHORTER[rel])
    else: run([str(BIN / "nbdev-test"), str(nb)], timeout=900, env=env)


def test_shorter_runs_name_real_parameters():
    # A renamed parameter would otherwise be injected beside the notebook's own and change nothing.
    for rel, params in SHORTER.items():
        cells = json.loads((ROOT / "nbs" / rel).read_text())["cells"]
        tagged = [c for c in cells if "parameters" in c["metadata"].get("tags", [])]
        assert len(tagged) == 1, f"{rel}: expected one cell tagged 'parameters', found {len(tagged)}"
        names = set(re.findall(r"^(\w+)\s*=", "".join(tagged[0]["source"]), re.M))
        assert set(params) <= names, f"{rel}: {sorted(set(params) - names)} are not among its parameters {sorted(names)}"


def papermill(nb, out, cwd=ROOT / "nbs", env=None, **params):
    args = [str(BIN / "papermill"), str(ROOT / "nbs" / nb), str(out), "-k", "drawlab", "--cwd", str(cwd)]
    for k, v in params.items():   # lists and dicts as YAML (-p would hand the notebook their text)
        args += ["-y", json.dumps({k: v})] if isinstance(v, (list, dict)) else ["-p", k, str(v)]
    return run(args, timeout=900, env=env or {})


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
