"""Semantic Pyramid end to end: the classifier notebook and the GAN notebook on 2 processes with resume, one
optimisation step that lowers each player's loss on a fixed batch, and bad input named before any work."""
import json

import pytest
import torch

from conftest import assert_one_step_lowers_each_loss
from test_notebooks import papermill


@pytest.fixture(scope="module")
def places(tmp_path_factory):
    "A synthetic places world of 13 categories, 5 training and 4 validation pictures each: its places365_standard folder."
    from lib.synth.places import make_places
    return make_places(tmp_path_factory.mktemp("places"), train_per_class=5, val_per_class=4)


def evals(run) -> list[dict]:
    return [r for r in map(json.loads, (run / "metrics.jsonl").read_text().splitlines()) if r.get("metric") == "pyramid_levels"]


def test_notebooks_train_the_classifier_then_the_gan_on_two_processes_and_resume(tmp_path, places):
    out = tmp_path / "runs"
    wide = [1, 0.25, 0.25, 0.25, 0.25]   # VGG-16's 64 channels in the first stage, the preset's quarter after
    papermill("train_vgg_classifier.ipynb", tmp_path / "c.ipynb", preset="smoke", data_dir=places, out_root=out,
              num_processes=2, classifier_width=wide)
    kept = places / "vgg16_classifier" / "cpu-demo-w1-0.25-0.25-0.25-0.25-seed0.pt"
    info = json.loads(kept.with_suffix(".json").read_text())
    assert kept.exists() and info["steps"] == 4 and 0 <= info["val_accuracy"] <= 1 and info["widths"][0] == 64
    assert "on 2 process(es)" in (kept.with_name(kept.stem + "-run") / "log.txt").read_text()   # its run, kept beside it
    common = dict(run_name="sp", out_root=out, preset="smoke", data_dir=places, num_processes=2, eval_every=2,
                  classifier_width=wide)
    papermill("train_semantic_pyramid.ipynb", tmp_path / "a.ipynb", steps=2, **common)
    papermill("train_semantic_pyramid.ipynb", tmp_path / "b.ipynb", steps=4, **common)   # the same run, longer: resumes
    run = out / "sp"
    log = (run / "log.txt").read_text()
    assert "on 2 process(es)" in log and "resumed from" in log
    assert [e["step"] for e in evals(run)] == [2, 4]
    final = evals(run)[-1]
    levels = ("pool1", "pool2", "pool3", "pool4", "pool5", "fc7", "fc8")
    assert {f"{m}@{k}" for m in ("feat_L1", "pix_L1", "FD_cls") for k in levels} | {"real_FD_cls"} <= set(final)
    params = json.loads((run / "params.json").read_text())
    # G reads the wide classifier trained above; the evaluation classifier keeps the preset's width
    assert params["classifier"].startswith(f"trained here: {kept}") and "cpu-demo-seed1.pt" in params["evaluation_space"]
    assert (run / "samples" / "levels.png").exists()


def test_one_step_lowers_each_players_loss_on_a_fixed_batch(places):
    from lib.systems.semantic_pyramid import build_system, sp_params
    p = sp_params("smoke", data_dir=str(places))
    system, items, _ = build_system(p, evaluation=False, log=None)
    batch = {"image": torch.stack([items[i]["image"] for i in range(8)]), "label": torch.tensor([items[i]["label"] for i in range(8)])}
    def check(phase, terms):
        if phase.name == "G": assert {"adversarial", "reconstruction", "diversity"} <= set(terms)
    assert_one_step_lowers_each_loss(system, batch, 8, check)


def test_bad_input_is_named_before_any_work(tmp_path, places):
    from lib.core import ConfigError
    from lib.systems.semantic_pyramid import sp_params, train_semantic_pyramid
    with pytest.raises(ConfigError, match="model_preset") as e:
        sp_params("cpu-demo", model_preset="paper-cats", lr=-1, p_spatial=1.5)
    assert "lr = -1" in str(e.value) and "p_spatial = 1.5" in str(e.value)
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="no places365_standard/ folder"):
        train_semantic_pyramid("smoke", data_dir=str(tmp_path / "empty"), out_root=tmp_path, run_name="x", progress=False)
    assert not (tmp_path / "x").exists()
    # Places365 weights of another class count than the folder's
    from lib.nn.pretrained import VGG16Classifier
    torch.save(VGG16Classifier(num_classes=20, width=0.25, fc_dim=64, grid=2).state_dict(), tmp_path / "vgg.pth")
    with pytest.raises(ValueError, match="vgg.pth: 20 classes, but .* has 13"):
        train_semantic_pyramid("smoke", data_dir=str(places), vgg16_weights=str(tmp_path / "vgg.pth"), out_root=tmp_path,
                               run_name="y", progress=False)
    assert not (tmp_path / "y").exists()
