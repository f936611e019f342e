"""Synthetic i-CLEVR written by `make_iclevr`, read back through the official-format readers of lib.data.geneva."""
import json

import h5py
import numpy as np
import pytest

from lib.data.geneva import GeNeVAEpisodes, GeNeVATurns, read_detector_h5, read_objects_txt
from lib.synth.iclevr import ENTITIES, N_TURNS, background_image, check_episode, iclevr_episodes, make_iclevr


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    return make_iclevr(tmp_path_factory.mktemp("iclevr"), n_train=12, n_val=4, n_test=3, seed=11)


def test_files_and_entities(dataset):
    assert sorted(p.name for p in dataset.iterdir()) == [
        "clevr_obj_test.h5", "clevr_obj_train.h5", "clevr_obj_val.h5",
        "clevr_test.h5", "clevr_train.h5", "clevr_val.h5", "objects.txt"]
    assert read_objects_txt(dataset / "objects.txt") == ENTITIES
    with h5py.File(dataset / "clevr_train.h5") as f:
        raw = f["entities"][()]
        assert json.loads(raw.decode() if isinstance(raw, bytes) else raw) == ENTITIES
        assert f["background"].shape == (240, 320, 3) and f["background"].dtype == np.uint8
        g = f["000005"]
        assert g["images"].shape == (N_TURNS, 128, 128, 3) and g["images"].dtype == np.uint8
        assert g["objects"].shape == (N_TURNS, 24) and g["objects"].dtype == np.float64
        assert g["coords"].shape == (N_TURNS, 24, 3) and g["coords"].dtype == np.float64
        text = g["text"][()]
        assert len(json.loads(text.decode() if isinstance(text, bytes) else text)) == N_TURNS


@pytest.mark.parametrize("split,n", [("train", 12), ("val", 4), ("test", 3)])
def test_episodes_read_back(dataset, split, n):
    ds = GeNeVAEpisodes(dataset / f"clevr_{split}.h5")
    assert ds.dataset == "iclevr" and len(ds) == n and ds.entities == ENTITIES
    assert ds.keys == [f"{i:06d}" for i in range(n)]
    assert np.abs(ds.background.astype(int) - background_image()).max() <= 3
    drawn = iclevr_episodes(n, seed=11, split=split)
    for i, ep in enumerate(ds):
        assert ep.images.shape == (N_TURNS, 128, 128, 3) and ep.images.dtype == np.uint8
        assert len(ep.instructions) == N_TURNS and all(isinstance(s, str) and s.startswith("Add a ") for s in ep.instructions)
        assert ep.instructions[0].endswith(" at the center")
        assert ep.objects.shape == (N_TURNS, 24) and ep.coords.shape == (N_TURNS, 24, 3)
        assert ep.scene_id == f"{i:06d}"
        assert ep == drawn[i]                          # the file holds exactly what was drawn (RGB after the BGR trip)
        check_episode(ep, ds.entities)                 # relations true, one object per entity, colours recognisable


def test_detector_file(dataset):
    det = read_detector_h5(dataset / "clevr_obj_val.h5")
    eps = list(GeNeVAEpisodes(dataset / "clevr_val.h5"))
    assert det["images"].shape == (4 * N_TURNS, 128, 128, 3)
    np.testing.assert_array_equal(det["images"], np.concatenate([e.images for e in eps]))
    np.testing.assert_array_equal(det["objects"], np.concatenate([e.objects for e in eps]))
    np.testing.assert_allclose(det["coords"], np.concatenate([e.coords for e in eps]))


def test_turns_dataset(dataset):
    turns = GeNeVATurns(dataset / "clevr_test.h5")
    assert len(turns) == 3 * N_TURNS
    first, second = turns[0], turns[1]
    assert first["turn"] == 0 and second["turn"] == 1 and first["instruction"].endswith("at the center")
    assert first["added"].sum() == 1 and second["added"].sum() == 1 and second["objects"].sum() == 2
    assert torch_equal(second["source"], first["target"])      # teacher forcing: the previous image is the source


def torch_equal(a, b) -> bool:
    return a.shape == b.shape and bool((a == b).all())


def test_deterministic_and_splits_independent(tmp_path):
    a = make_iclevr(tmp_path / "a", 3, 2, 0, seed=5)
    b = make_iclevr(tmp_path / "b", 5, 2, 0, seed=5)       # more training episodes: validation unchanged
    c = make_iclevr(tmp_path / "c", 3, 2, 0, seed=6)
    assert not (a / "clevr_test.h5").exists()              # a split of 0 episodes is not written
    assert (a / "clevr_val.h5").read_bytes() == (b / "clevr_val.h5").read_bytes()
    assert (a / "clevr_obj_val.h5").read_bytes() == (b / "clevr_obj_val.h5").read_bytes()
    assert GeNeVAEpisodes(a / "clevr_train.h5")[2] == GeNeVAEpisodes(b / "clevr_train.h5")[2]
    assert GeNeVAEpisodes(a / "clevr_train.h5")[0] != GeNeVAEpisodes(c / "clevr_train.h5")[0]


def test_bad_counts(tmp_path):
    with pytest.raises(ValueError, match="n_val must be a whole number"):
        make_iclevr(tmp_path, 2, -1, 0)
    with pytest.raises(ValueError, match="n_test must be a whole number"):
        make_iclevr(tmp_path, 2, 1, 0.5)
