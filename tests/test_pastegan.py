"""PasteGAN end to end: the papermill notebook (PasteGAN then the sg2im baseline, 2 processes, resume), the COCO-Stuff
layout, exact resume for both models, one optimisation step that lowers each player's loss on a fixed batch, and bad
input named before any work."""
import json

import pytest
import torch

from conftest import assert_one_step_lowers_each_loss
from test_notebooks import papermill


@pytest.fixture(scope="module")
def scenes(tmp_path_factory):
    "A synthetic scene world of 60 pictures in both official layouts: (vg folder, coco folder)."
    from lib.synth.scenes import make_scenes
    root = tmp_path_factory.mktemp("scenes")
    make_scenes(root, 60, 0)
    return root / "vg", root / "coco"


def evals(run) -> list[dict]:
    return [r for r in map(json.loads, (run / "metrics.jsonl").read_text().splitlines()) if r.get("metric") == "scenes"]


def test_notebook_trains_pastegan_and_sg2im_on_two_processes_and_resumes(tmp_path, scenes):
    out = tmp_path / "runs"
    common = dict(run_name="pg", out_root=out, preset="smoke", data_dir=scenes[0], num_processes=2)
    papermill("train_pastegan.ipynb", tmp_path / "a.ipynb", steps=2, **common)
    papermill("train_pastegan.ipynb", tmp_path / "b.ipynb", steps=4, **common)   # the same runs, longer: both resume
    for run in (out / "pg", out / "pg-sg2im"):
        log = (run / "log.txt").read_text()
        assert "on 2 process(es)" in log and "resumed from" in log, run
        final = evals(run)[-1]
        assert final["step"] == 4 and {"obj_acc", "FD_cls", "real_obj_acc", "real_FD_cls", "DS_cls", "n_objects"} <= set(final)
        assert 0 <= final["obj_acc"] <= 1 and final["n"] == 6   # the smoke world's test split: 6 of its 60 pictures
        assert (run / "samples" / "scene-0.png").exists()
    assert "rec_obj_acc" in evals(out / "pg")[-1] and "rec_obj_acc" not in evals(out / "pg-sg2im")[-1]
    params = json.loads((out / "pg" / "params.json").read_text())
    assert params["perceptual"].startswith("off") and params["crop_memory"].endswith("train-16px.h5")


def test_coco_stuff_layout_trains_with_masked_crops(tmp_path, scenes):
    from lib.systems.pastegan import train_pastegan
    engine = train_pastegan("smoke", data_dir=str(scenes[1]), run_name="coco", out_root=tmp_path, steps=2, progress=False)
    assert engine.step == 2
    assert json.loads((tmp_path / "coco" / "params.json").read_text())["layout"] == "coco"
    assert (scenes[1] / "crop_memory" / "train-16px.h5").exists()


@pytest.mark.parametrize("model", ["pastegan", "sg2im"])
def test_resume_equals_uninterrupted(tmp_path, scenes, model):
    from lib.systems.pastegan import train_pastegan
    common = dict(data_dir=str(scenes[0]), model=model, out_root=tmp_path, progress=False, eval_every=0, eval_images=4)
    straight = train_pastegan("smoke", run_name="a", steps=4, **common)
    train_pastegan("smoke", run_name="b", steps=2, **common)
    resumed = train_pastegan("smoke", run_name="b", steps=4, **common)
    for (k, x), (_, y) in zip(straight.system.G.state_dict().items(), resumed.system.G.state_dict().items()):
        assert torch.equal(x, y), k


@pytest.mark.parametrize("model", ["pastegan", "sg2im"])
def test_one_step_lowers_each_players_loss_on_a_fixed_batch(scenes, model):
    from lib.systems.pastegan import build_system, pastegan_params
    p = pastegan_params("smoke", data_dir=str(scenes[0]), model=model)
    system, items, _ = build_system(p, evaluation=False, log=None)
    def check(phase, terms):
        if phase.name == "G" and model == "pastegan": assert "crop_matching" in terms
    assert_one_step_lowers_each_loss(system, system.collate_fn([items[i] for i in range(8)]), 8, check)


def test_bad_input_is_named_before_any_work(tmp_path, scenes):
    import shutil
    from lib.core import ConfigError
    from lib.data.scene_graphs import SceneGraphFormatError
    from lib.systems.pastegan import pastegan_params, train_pastegan
    with pytest.raises(ConfigError, match="model_preset") as e:
        pastegan_params("cpu-demo", model_preset="paper-cats", lr=-1, top_k=0)
    assert "lr = -1" in str(e.value) and "top_k = 0" in str(e.value)
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="neither sg2im's Visual Genome layout"):
        train_pastegan("smoke", data_dir=str(tmp_path / "empty"), out_root=tmp_path, run_name="x", progress=False)
    assert not (tmp_path / "x").exists()
    # a vocab.json that is not the one written with the h5 files: fewer object names than the ids they hold
    other = tmp_path / "vg"
    shutil.copytree(scenes[0], other, ignore=shutil.ignore_patterns("crop_memory", "object_classifier"))
    vocab = json.loads((other / "vocab.json").read_text())
    names = vocab["object_idx_to_name"][:5]
    vocab["object_idx_to_name"], vocab["object_name_to_idx"] = names, {n: i for i, n in enumerate(names)}
    (other / "vocab.json").write_text(json.dumps(vocab))
    with pytest.raises(SceneGraphFormatError, match="object_names") as e:
        train_pastegan("smoke", data_dir=str(other), out_root=tmp_path, run_name="y", progress=False)
    assert "train.h5" in str(e.value) and "vocab.json is not the one written with this file" in str(e.value)
    assert not (tmp_path / "y").exists()
