"""LatteGAN end to end on a tiny synthetic i-CLEVR: the papermill main job (2 processes, then resumed), resume ==
uninterrupted, and clear errors for embedding files that do not belong to the dataset."""
import json
import os

import pytest
import torch

from conftest import BIN, ROOT, run
from lib.data.embeddings import EmbeddingsFormatError, create_embeddings
from lib.metrics.geneva import train_evaluator
from lib.synth.iclevr import make_iclevr
from lib.systems.lattegan import EmbeddedTurns, dataset_paths, train_lattegan
from lib.train import list_checkpoints, load_checkpoint

SMOKE = dict(steps=4, batch_size=4, eval_dialogues=2, progress=False)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    "A data root holding a tiny synthetic i-CLEVR with a (barely trained) evaluator and MiniLM embeddings."
    root = tmp_path_factory.mktemp("data")
    folder = make_iclevr(root / "synthetic" / "iclevr", 12, 4, 4, seed=0)
    train_evaluator(folder, "iclevr", epochs=1, batch_size=16, width=8, verbose=False)
    create_embeddings(folder, "iclevr", splits=("train", "val"), progress=False)
    return root


def test_main_job_two_processes_then_resumed(tiny, tmp_path):
    out = tmp_path / "outputs"
    env = {"DRAWLAB_DATA": str(tiny), "DRAWLAB_OUTPUTS": str(out), "OMP_NUM_THREADS": "1"}
    cmd = [str(BIN / "papermill"), "nbs/train_lattegan.ipynb", str(tmp_path / "executed.ipynb"), "-k", "drawlab",
           "--cwd", "nbs", "-p", "preset", "smoke", "-p", "run_name", "tiny", "-p", "batch_size", "4",
           "-p", "eval_dialogues", "2", "-p", "num_processes", "2"]
    run([*cmd, "-p", "steps", "2"], env=env)
    run([*cmd, "-p", "steps", "4"], env=env)       # same run name: resumes at step 2
    run_dir = out / "runs" / "tiny"
    log = (run_dir / "log.txt").read_text()
    assert "on 2 process(es)" in log and "from step 2" in log, log
    assert load_checkpoint(list_checkpoints(run_dir / "checkpoints")[-1])["world_size"] == 2
    records = [json.loads(l) for l in (run_dir / "metrics.jsonl").read_text().splitlines()]
    metrics = {r.get("metric") for r in records if r["kind"] == "eval"}
    assert {"geneva", "copy_previous"} <= metrics
    for r in records:
        if r["kind"] == "eval": assert all(0 <= r[k] <= 1 for k in ("AP", "AR", "F1", "RSIM")), r
    assert list((run_dir / "samples").glob("dialogue-*.png"))


def test_resume_equals_uninterrupted(tiny, tmp_path, monkeypatch):
    monkeypatch.setenv("DRAWLAB_DATA", str(tiny))
    straight = train_lattegan("smoke", out_root=tmp_path, run_name="straight", **SMOKE)
    train_lattegan("smoke", out_root=tmp_path, run_name="split", **{**SMOKE, "steps": 2})
    resumed = train_lattegan("smoke", out_root=tmp_path, run_name="split", **SMOKE)
    assert resumed.step == straight.step == 4
    for name in ("G", "D"):
        a, b = getattr(straight.system, name).state_dict(), getattr(resumed.system, name).state_dict()
        for k in a: assert torch.equal(a[k], b[k]), f"{name}.{k} differs after resume"


def test_embeddings_of_another_split_are_refused(tiny):
    folder = tiny / "synthetic" / "iclevr"
    train, val = (dataset_paths(folder, "iclevr", "minilm", s) for s in ("train", "val"))
    with pytest.raises(EmbeddingsFormatError, match=r"clevr_val_embeddings_minilm\.h5: no group"):
        EmbeddedTurns(train["data"], val["embeddings"])
    with pytest.raises(FileNotFoundError, match="embeddings are missing"):
        train_lattegan("smoke", data_dir=str(tmp_missing(folder)), run_name="x", **SMOKE)


def tmp_missing(folder):
    "A copy of the dataset folder without the embedding files."
    import shutil
    target = folder.parent / "no-embeddings"
    if not target.exists():
        target.mkdir()
        for f in folder.glob("clevr_*.h5"):
            if "embeddings" not in f.name: shutil.copy(f, target / f.name)
    return target
