"GeNeVA evaluator: the papermill entry point end to end, official checkpoints, and the scores against a brute-force oracle."
import json
import os

import numpy as np
import pytest
import torch
from sklearn.metrics import recall_score

from conftest import BIN, ROOT, run
from lib.core import read_jsonl
from lib.metrics.geneva import (EvaluatorFormatError, InceptionEvaluator, detection_scores, load_evaluator, predict,
                                read_detector_file, rsim_per_image)
from lib.systems.geneva_evaluator import train_evaluator


def test_papermill_trains_a_loadable_evaluator(tmp_path, outputs):
    "The training notebook with tiny parameters: generates i-CLEVR, trains, writes and reloads the checkpoint."
    out_nb = tmp_path / "executed.ipynb"
    run([str(BIN / "papermill"), "nbs/train_geneva_evaluator.ipynb", str(out_nb), "-k", "drawlab", "--cwd", "nbs",
         "-p", "dataset", "iclevr", "-p", "epochs", "2", "-p", "batch_size", "16", "-p", "width", "8",
         "-p", "run_name", "tiny", "-p", "test_episodes", "4", "-y", "n_episodes: [12, 4, 4]"], timeout=300)
    data_dir = tmp_path / "data" / "synthetic" / "iclevr"   # DRAWLAB_DATA is tmp_path/data (the outputs fixture)
    ckpt = data_dir / "clevr_compact_best_checkpoint.pth"
    assert (data_dir / "clevr_obj_train.h5").exists() and ckpt.exists()
    evaluator = load_evaluator(ckpt)
    images = read_detector_file(data_dir / "clevr_obj_test.h5").images[:3]
    probs, coords = predict(evaluator, images)
    assert probs.shape == (3, 24) and coords.shape == (3, 24, 2)
    records = read_jsonl(outputs / "runs" / "tiny" / "metrics.jsonl")
    assert [r["kind"] for r in records if r["kind"] != "train"] == ["epoch", "epoch", "test"]   # "train": the engine's
    assert (outputs / "runs" / "tiny" / "checkpoints").is_dir() and (outputs / "runs" / "tiny" / "result.json").exists()
    test = records[-1]
    assert set(test) >= {"labels", "ground_truth", "copy_previous"}
    assert 0 <= test["labels"]["F1"] <= 1 and test["ground_truth"]["n_images"] == 4 * 5
    assert json.loads((outputs / "runs" / "tiny" / "params.json").read_text())["dataset"] == "iclevr"


def test_train_from_episode_files_when_no_detector_file(tmp_path):
    "CoDraw without `codraw_obj_*.h5`: the turns of the episode files are the training images."
    from lib.synth.codraw import make_codraw
    make_codraw(tmp_path, 6, 3, 0, seed=1)
    for split in ("train", "val"): (tmp_path / f"codraw_obj_{split}.h5").unlink()
    res = train_evaluator(tmp_path, "codraw", epochs=1, batch_size=8, width=8, verbose=False)
    assert res["n_train"] > 6 and res["path"].name == "codraw_compact_best_checkpoint.pth"
    assert load_evaluator(res["path"]).num_coords == 3


@pytest.fixture(scope="module")
def official_file(tmp_path_factory):
    "An Inception evaluator saved exactly as the official script saves one (DataParallel keys, numpy best_f1, legacy format)."
    torch.manual_seed(0)
    model = InceptionEvaluator(58).eval()
    state = {f"module.{k}": v for k, v in model.state_dict().items()}
    ckpt = dict(state_dict=state, num_classes=58, pretrained=False, cuda_enabled=True, epoch=100,
                best_f1=np.float64(0.91))
    path = tmp_path_factory.mktemp("official") / "codraw_inception_best_checkpoint.pth"
    torch.save(ckpt, path, _use_new_zipfile_serialization=False)
    return path, model, ckpt


def test_official_checkpoint_loads_and_matches(official_file):
    path, model, _ = official_file
    ev = load_evaluator(path)
    x = torch.rand(2, 3, 128, 128) * 2 - 1
    with torch.no_grad():
        (pa, ca), (pb, cb) = model(x), ev(x)
    assert pb.shape == (2, 58) and cb.shape == (2, 58, 3)
    assert torch.allclose(pa, pb, atol=1e-6) and torch.allclose(ca, cb, atol=1e-6)


def test_official_checkpoint_errors(official_file, tmp_path):
    path, _, ckpt = official_file
    state = ckpt["state_dict"]
    bad = tmp_path / "bad.pth"
    torch.save(dict(ckpt, state_dict={k: v for k, v in state.items() if k != "module.localizer.1.weight"}), bad)
    with pytest.raises(EvaluatorFormatError, match=r"bad\.pth.*missing keys \['localizer\.1\.weight'\]"):
        load_evaluator(bad)
    torch.save(dict(ckpt, state_dict={**state, "module.inception3.AuxLogits.fc2.weight": torch.zeros(1)}), bad)
    with pytest.raises(EvaluatorFormatError, match=r"unexpected keys \['inception3\.AuxLogits\.fc2\.weight'\]"):
        load_evaluator(bad)
    # files from before PyTorch 0.4.1 have no batch-norm counters: still loadable
    torch.save(dict(ckpt, state_dict={k: v for k, v in state.items() if not k.endswith("num_batches_tracked")}), bad)
    assert isinstance(load_evaluator(bad), InceptionEvaluator)
    torch.save(dict(ckpt, num_classes=24), bad)   # 58-class weights under a 24-class header
    with pytest.raises(EvaluatorFormatError, match="do not fit"):
        load_evaluator(bad)
    state = {k: v.clone() for k, v in state.items()}                     # a NaN weight, named by its key
    state["module.detector.1.weight"][3, 7] = float("nan")
    torch.save(dict(ckpt, state_dict=state), bad)
    with pytest.raises(EvaluatorFormatError, match=r"bad\.pth: state_dict key 'module\.detector\.1\.weight': holds NaN"):
        load_evaluator(bad)


def _oracle_rsim(pred, ref, loc_gen, loc_ref, cols):
    "Per-image RSIM written from the description, with explicit loops."
    both = [c for c in range(len(ref)) if pred[c] and ref[c]]
    if not both: return 0.0
    agree = total = 0
    for axis in cols:
        for i in both:
            for j in both:
                gi, gj = loc_gen[i][axis], (0.5 if i == j else loc_gen[j][axis])
                ri, rj = loc_ref[i][axis], (0.5 if i == j else loc_ref[j][axis])
                sg = 1 if gi > gj else (-1 if gi < gj else 0)
                sr = 1 if ri > rj else (-1 if ri < rj else 0)
                agree += sg == sr; total += 1
    return recall_score(np.array([ref]), np.array([pred]), average="samples") * agree / total


@pytest.mark.parametrize("dataset,k,y_from_z", [("iclevr", 2, True), ("codraw", 3, True), ("codraw", 3, False)])
def test_rsim_matches_a_brute_force_oracle(dataset, k, y_from_z):
    rng = np.random.default_rng(k + y_from_z)
    n, c = 200, 7
    p_gen, p_ref = rng.random((n, c)), rng.random((n, c))
    # coarse grids make ties (and exact 0.5s) frequent
    loc_gen, loc_ref = rng.integers(0, 5, (n, c, k)) / 4, rng.integers(0, 5, (n, c, k)) / 4
    cols = (0, 1) if dataset == "iclevr" or not y_from_z else (0, 2)
    want = [_oracle_rsim(p_gen[i] > 0.5, p_ref[i] > 0.5, loc_gen[i], loc_ref[i], cols) for i in range(n)]
    got = rsim_per_image(p_gen, loc_gen, p_ref, loc_ref, dataset, codraw_y_from_z=y_from_z)
    np.testing.assert_allclose(got, want, atol=1e-12)
    assert (got == 0).any() and (got > 0).any()


def test_detection_scores_match_per_image_definitions():
    rng = np.random.default_rng(0)
    p_gen, p_ref = rng.random((300, 6)) ** 2, rng.random((300, 6)) ** 2   # many images with nothing detected
    s = detection_scores(p_gen, p_ref)
    pred, ref = p_gen > 0.5, p_ref > 0.5
    tp = (pred & ref).sum(1)
    prec = np.where(pred.sum(1) > 0, tp / np.maximum(pred.sum(1), 1), 0)
    rec = np.where(ref.sum(1) > 0, tp / np.maximum(ref.sum(1), 1), 0)
    denom = pred.sum(1) + ref.sum(1)
    f1 = np.where(denom > 0, 2 * tp / np.maximum(denom, 1), 0)
    assert np.isclose(s["AP"], prec.mean()) and np.isclose(s["AR"], rec.mean()) and np.isclose(s["F1"], f1.mean())
