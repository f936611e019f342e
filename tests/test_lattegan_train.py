"""LatteGAN end to end on a tiny synthetic i-CLEVR: the three papermill stages (TIRG pre-training, embeddings, the
main job on 2 processes then resumed), resume == uninterrupted, the GeNeVA-GAN baseline through the same entry
point, and clear errors for embedding files or pieces that do not belong to the dataset."""
import json
import shutil
import subprocess

import pytest
import torch

from conftest import BIN, ROOT, run
from lib.data.embeddings import EmbeddingsFormatError, TurnEmbeddings
from lib.data.geneva import GeNeVATurns
from lib.synth.iclevr import make_iclevr
from lib.systems.geneva import dataset_paths
from lib.systems.lattegan import train_lattegan
from lib.systems.geneva_evaluator import train_evaluator
from lib.systems.tirg import read_tirg_info
from lib.train import list_checkpoints, load_checkpoint

SMOKE = dict(steps=4, batch_size=4, eval_dialogues=2, progress=False)


def papermill(notebook, out, *params, env):
    "Run nbs/<notebook> with papermill, `params` as (name, value) pairs."
    cmd = [str(BIN / "papermill"), f"nbs/{notebook}", str(out), "-k", "drawlab", "--cwd", "nbs"]
    for k, v in params: cmd += ["-p", k, str(v)]
    return run(cmd, env={"OMP_NUM_THREADS": "1", **env})


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """A data root holding a tiny synthetic i-CLEVR, a (barely trained) evaluator, and -- made by the first two
    papermill stages -- a TIRG-fine-tuned MiniLM and its train/val embeddings."""
    root = tmp_path_factory.mktemp("data")
    work = tmp_path_factory.mktemp("work")
    folder = make_iclevr(root / "synthetic" / "iclevr", 12, 4, 4, seed=0)
    train_evaluator(folder, "iclevr", epochs=1, batch_size=16, width=8, verbose=False)
    env = {"DRAWLAB_DATA": str(root), "DRAWLAB_OUTPUTS": str(work / "outputs")}
    papermill("pretrain_tirg.ipynb", work / "tirg.ipynb", ("run_name", "tirg"), ("steps", 3), ("batch_size", 4),
              ("max_len", 16), ("hidden_dim", 16), ("val_turns", 8), env=env)
    papermill("create_embeddings.ipynb", work / "emb.ipynb", ("run_name", "emb"), ("splits", "train,val"),
              env=env)
    return root, work


def test_tirg_and_embedding_stages(tiny):
    root, work = tiny
    folder = root / "synthetic" / "iclevr"
    info = read_tirg_info(folder / "tirg-minilm")
    assert info["steps"] == 3 and info["image_features"]["source"].startswith("evaluator"), info
    params = json.loads((work / "outputs" / "runs" / "tirg" / "params.json").read_text())
    assert params["image_features"] == info["image_features"]          # stated in the run, never silently random
    for split in ("train", "val"):
        emb = TurnEmbeddings(folder / f"clevr_{split}_embeddings_tirg-minilm.h5", folder / f"clevr_{split}.h5")
        assert emb.dim == 384 and emb.max_len <= 16
    records = [json.loads(l) for l in (work / "outputs" / "runs" / "emb" / "metrics.jsonl").read_text().splitlines()]
    assert [r["split"] for r in records] == ["train", "val"]


def test_main_job_two_processes_then_resumed(tiny, tmp_path):
    root, _ = tiny
    out = tmp_path / "outputs"
    env = {"DRAWLAB_DATA": str(root), "DRAWLAB_OUTPUTS": str(out)}
    params = [("preset", "smoke"), ("run_name", "tiny"), ("batch_size", 4), ("eval_dialogues", 2), ("num_processes", 2)]
    papermill("train_lattegan.ipynb", tmp_path / "a.ipynb", *params, ("steps", 2), env=env)
    papermill("train_lattegan.ipynb", tmp_path / "b.ipynb", *params, ("steps", 4), env=env)   # resumes at step 2
    run_dir = out / "runs" / "tiny"
    log = (run_dir / "log.txt").read_text()
    assert "on 2 process(es)" in log and "from step 2" in log, log
    assert load_checkpoint(list_checkpoints(run_dir / "checkpoints")[-1])["world_size"] == 2
    assert json.loads((run_dir / "params.json").read_text())["embeddings"].endswith("clevr_train_embeddings_tirg-minilm.h5")
    records = [json.loads(l) for l in (run_dir / "metrics.jsonl").read_text().splitlines()]
    evals = [r for r in records if r["kind"] == "eval"]
    assert [r["metric"] for r in evals].count("copy_previous") == 1          # the floor once per run, not per resume
    assert {"geneva", "copy_previous"} <= {r["metric"] for r in evals}
    for r in evals: assert all(0 <= r[k] <= 1 for k in ("AP", "AR", "F1", "RSIM")), r
    assert list((run_dir / "samples").glob("dialogue-*.png"))


def test_resume_equals_uninterrupted(tiny, tmp_path, monkeypatch):
    monkeypatch.setenv("DRAWLAB_DATA", str(tiny[0]))
    straight = train_lattegan("smoke", out_root=tmp_path, run_name="straight", **SMOKE)
    train_lattegan("smoke", out_root=tmp_path, run_name="split", **{**SMOKE, "steps": 2})
    resumed = train_lattegan("smoke", out_root=tmp_path, run_name="split", **SMOKE)
    assert resumed.step == straight.step == 4
    for name in ("G", "D"):
        a, b = getattr(straight.system, name).state_dict(), getattr(resumed.system, name).state_dict()
        for k in a: assert torch.equal(a[k], b[k]), f"{name}.{k} differs after resume"


def test_warm_start_then_resume_equals_uninterrupted(tiny, tmp_path, monkeypatch):
    "A warm-started run resumed mid-GAN skips the warm start (the checkpoint holds its G) and ends where an uninterrupted one does."
    monkeypatch.setenv("DRAWLAB_DATA", str(tiny[0]))
    warm = dict(SMOKE, warm_start_steps=2, warm_start="target")
    straight = train_lattegan("smoke", out_root=tmp_path, run_name="straight", **warm)
    train_lattegan("smoke", out_root=tmp_path, run_name="split", **{**warm, "steps": 2})
    resumed = train_lattegan("smoke", out_root=tmp_path, run_name="split", **warm)
    assert "from step 0" in (resumed.run.path / "warm-start" / "log.txt").read_text()   # one warm start only
    assert (resumed.run.path / "warm-start" / "log.txt").read_text().count("training") == 1
    assert resumed.run.load_params()["warm_start_s"] > 0
    for name in ("G", "D"):
        a, b = getattr(straight.system, name).state_dict(), getattr(resumed.system, name).state_dict()
        for k in a: assert torch.equal(a[k], b[k]), f"{name}.{k} differs after resume"


def test_geneva_gan_baseline(tiny, tmp_path, monkeypatch):
    monkeypatch.setenv("DRAWLAB_DATA", str(tiny[0]))
    engine = train_lattegan("smoke", model="geneva_gan", out_root=tmp_path, run_name="geneva", **SMOKE)
    assert engine.step == 4
    evals = {r["metric"]: r for r in engine.run.read_metrics() if r["kind"] == "eval"}
    assert set(evals) == {"geneva", "copy_previous"} and 0 <= evals["geneva"]["F1"] <= 1
    vocab = json.loads((engine.run.path / "vocab.json").read_text())
    assert {"<pad>", "<unk>", "cube"} <= set(vocab)


def test_embeddings_of_another_split_are_refused(tiny):
    folder = tiny[0] / "synthetic" / "iclevr"
    train, val = (dataset_paths(folder, "iclevr", s) for s in ("train", "val"))
    with pytest.raises(EmbeddingsFormatError, match=r"clevr_val_embeddings_tirg-minilm\.h5.*clevr_train\.h5"):
        GeNeVATurns(train["data"], 64, embeddings=TurnEmbeddings(val["embeddings"]))


def test_missing_pieces_of_a_real_folder_name_their_command(tiny, tmp_path):
    "A dataset folder without embeddings: the library refuses, and the notebook names the notebook that makes them."
    folder = tiny[0] / "synthetic" / "iclevr"
    real = tmp_path / "real"
    real.mkdir()
    for f in folder.glob("clevr_*.h5"):
        if "embeddings" not in f.name: shutil.copy(f, real / f.name)
    shutil.copy(dataset_paths(folder, "iclevr", "train")["evaluator"], real)
    with pytest.raises(FileNotFoundError, match="training embeddings are missing"):
        train_lattegan("smoke", data_dir=str(real), out_root=tmp_path, run_name="x", **SMOKE)
    cmd = [str(BIN / "papermill"), "nbs/train_lattegan.ipynb", str(tmp_path / "x.ipynb"), "-k", "drawlab", "--cwd", "nbs",
           "-p", "preset", "smoke", "-p", "data_dir", str(real), "-p", "out_root", str(tmp_path / "runs")]
    p = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert p.returncode != 0
    assert "TIRG-fine-tuned encoder tirg-minilm/ is missing" in p.stderr + p.stdout
    assert "papermill nbs/pretrain_tirg.ipynb" in p.stderr + p.stdout


def test_long_run_script_gives_both_systems_one_budget(tiny, tmp_path):
    """tools/geneva_long.py: LatteGAN for a wall-clock budget, GeNeVA-GAN for as many steps, both after the same warm
    start; records copied flat."""
    root, _ = tiny
    folder, out = root / "synthetic" / "iclevr", tmp_path / "out"
    p = run([str(BIN / "python"), "tools/geneva_long.py", "--data-dir", str(folder), "--out", str(out), "--minutes", "0.1",
             "--batch", "4", "--eval-dialogues", "2", "--warm-start-steps", "3", "--runs-root", str(tmp_path / "runs")],
            env={"OMP_NUM_THREADS": "1"})
    assert "copy previous image" in p.stdout and "GeNeVA-GAN (EMA, step" in p.stdout, p.stdout[-2000:]
    assert p.stdout.count(", warm start 3)") == 2 and p.stdout.count("] 3 warm-start steps (") == 2, p.stdout[-2000:]
    assert "[prepare] text encoder: 3 TIRG steps on evaluator features" in p.stdout   # the folder's own encoder, named
    steps = {}
    for name in ("geneva-long-lattegan", "geneva-long-geneva_gan"):
        records = [json.loads(l) for l in (out / name / "metrics.jsonl").read_text().splitlines()]
        steps[name] = max(r["step"] for r in records if r["kind"] == "train")
        assert any(r.get("metric") == "geneva" for r in records) and list((out / name).glob("dialogue-0-step-*.png"))
        params = json.loads((out / name / "params.json").read_text())
        assert params["batch_size"] == 4 and (params["steps"] is None) == (name == "geneva-long-lattegan"), params
        assert params["warm_start_steps"] == 3 and params["warm_start_s"] > 0, params   # the same warm start for both
    assert 0 < steps["geneva-long-lattegan"] == steps["geneva-long-geneva_gan"] < 10**6, steps   # stopped by the clock


def test_long_run_side_by_side_gives_both_systems_one_clock(tiny, tmp_path):
    """tools/geneva_long.py --side-by-side: both systems at once, one thread each, each stopped by the same wall-clock
    budget after the same warm start; runs named by --prefix, records copied flat."""
    root, _ = tiny
    folder, out = root / "synthetic" / "iclevr", tmp_path / "out"
    p = run([str(BIN / "python"), "tools/geneva_long.py", "--data-dir", str(folder), "--out", str(out), "--minutes", "0.1",
             "--side-by-side", "--prefix", "sbs", "--batch", "4", "--eval-dialogues", "2", "--warm-start-steps", "3",
             "--runs-root", str(tmp_path / "runs")])
    assert "copy previous image" in p.stdout and "GeNeVA-GAN (EMA, step" in p.stdout, p.stdout[-2000:]
    for model in ("lattegan", "geneva_gan"):
        name = f"sbs-{model}"
        assert f"--model {model} --run_name {name}" in p.stdout, p.stdout[-2000:]
        records = [json.loads(l) for l in (out / name / "metrics.jsonl").read_text().splitlines()]
        assert any(r.get("metric") == "geneva" for r in records) and list((out / name).glob("dialogue-0-step-*.png"))
        params = json.loads((out / name / "params.json").read_text())
        assert params["model"] == model and params["time_limit_s"] == 6 and params["steps"] == 10**9, params
        assert params["warm_start_steps"] == 3 and params["batch_size"] == 4, params
        assert (out / f"{name}.log").exists()


def test_long_run_pack_carries_a_half_size_encoder(tiny, tmp_path):
    "--pack: the evaluator and the TIRG encoder in bfloat16, which embeds as the float32 one does."
    from lib.nn.text import embed_turns, load_text_encoder
    root, _ = tiny
    folder, pack = root / "synthetic" / "iclevr", tmp_path / "pack"
    run([str(BIN / "python"), "tools/geneva_long.py", "--data-dir", str(folder), "--out", str(tmp_path / "out"),
         "--pack", str(pack)])
    assert (pack / dataset_paths(folder, "iclevr", "train")["evaluator"].name).exists()
    full, half = folder / "tirg-minilm" / "model.safetensors", pack / "tirg-minilm" / "model.safetensors"
    assert half.stat().st_size < 0.55 * full.stat().st_size
    assert read_tirg_info(pack / "tirg-minilm") == read_tirg_info(folder / "tirg-minilm")
    turns = [("", "add a red cube at the center"), ("add a red cube at the center", "add a blue sphere behind it")]
    s32, s16 = (embed_turns(*load_text_encoder(str(d / "tirg-minilm")), turns)[0] for d in (folder, pack))
    assert torch.nn.functional.cosine_similarity(torch.from_numpy(s32), torch.from_numpy(s16)).min() > 0.999
