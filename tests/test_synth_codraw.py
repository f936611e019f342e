"""The synthetic CoDraw written by `lib.synth.codraw.make_codraw`, read back through `lib.data.geneva`."""
import string

import h5py
import numpy as np
import pytest

from lib.data.geneva import GeNeVAEpisodes, GeNeVATurns
from lib.synth.codraw import CODRAW_OBJECTS, SPLITS, codraw_episode, make_background, make_codraw, sprite_box

SIZES = {"train": 12, "val": 3, "test": 4}
SEED = 7


@pytest.fixture(scope="module")
def codraw(tmp_path_factory):
    return make_codraw(tmp_path_factory.mktemp("codraw"), SIZES["train"], SIZES["val"], SIZES["test"], seed=SEED)


def test_files(codraw):
    names = sorted(p.name for p in codraw.iterdir())
    assert names == sorted(["objects.txt"] + [f"codraw_{s}.h5" for s in SPLITS] + [f"codraw_obj_{s}.h5" for s in SPLITS])
    assert (codraw / "objects.txt").read_text().splitlines() == CODRAW_OBJECTS
    assert len(CODRAW_OBJECTS) == 58 and CODRAW_OBJECTS[:4] == ["helicopter", "hotairballoon", "cloud", "sun"]


@pytest.mark.parametrize("split", SPLITS)
def test_read_back(codraw, split):
    eps = GeNeVAEpisodes(codraw / f"codraw_{split}.h5")
    assert eps.dataset == "codraw" and len(eps) == SIZES[split]
    assert list(eps.entities) == CODRAW_OBJECTS
    np.testing.assert_array_equal(eps.background, make_background())
    for ep in eps:
        T = len(ep.images)
        assert 1 <= T <= 10
        assert ep.images.shape == (T, 128, 128, 3) and ep.images.dtype == np.uint8
        assert ep.objects.shape == (T, 58) and ep.coords.shape == (T, 58, 3)
        # text: official tokens, no punctuation, no chit-chat words
        assert len(ep.instructions) == T
        for u in ep.instructions:
            words = u.split()
            assert words[0] in ("<teller>", "<drawer>") and u == u.lower()
            assert not any(w in string.punctuation or w in ("ok", "done", "hi", "hello", "okay") for w in words)
        # entities: cumulative 0/1 bags, every turn adds something, coords integral, 0 where absent
        assert set(np.unique(ep.objects)) <= {0.0, 1.0}
        added = np.diff(np.concatenate([np.zeros((1, 58)), ep.objects]), axis=0)
        assert added.min() >= 0 and (added.sum(1) >= 1).all()
        assert (ep.coords[ep.objects == 0] == 0).all() and (ep.coords == np.round(ep.coords)).all()
        present = ep.coords[ep.objects == 1]
        assert (present[:, :2] >= 0).all() and (present[:, :2] < 128).all() and set(present[:, 2]) <= {0, 1, 2}
        # the named clip art is where the coordinates say: the box differs from the park
        bg = eps.background.astype(int)
        for t in range(T):
            for c in np.flatnonzero(ep.objects[t]):
                x, y, z = (int(v) for v in ep.coords[t, c])
                x0, y0, x1, y1 = sprite_box(c, z, x, y)
                x0, y0 = max(x0, 0), max(y0, 0)
                assert (np.abs(ep.images[t, y0:y1, x0:x1].astype(int) - bg[y0:y1, x0:x1]).max(-1) > 20).any()


def test_scene_ids_unique_across_splits(codraw):
    ids = [e.scene_id for s in SPLITS for e in GeNeVAEpisodes(codraw / f"codraw_{s}.h5")]
    assert ids == [str(i) for i in range(sum(SIZES.values()))]


def test_official_layout(codraw):
    "Raw h5py view: BGR pixels, the `utterences` spelling, integer arrays, bytes strings."
    eps = GeNeVAEpisodes(codraw / "codraw_train.h5")
    with h5py.File(codraw / "codraw_train.h5", "r") as f:
        g = f["0"]
        assert set(g.keys()) == {"images", "utterences", "objects", "coords", "scene_id"}
        np.testing.assert_array_equal(g["images"][...][..., ::-1], eps[0].images)   # stored BGR
        assert g["objects"].dtype.kind == "i" and g["coords"].dtype.kind == "i"
        assert isinstance(g["utterences"][0], bytes) and g["utterences"][0].decode() == eps[0].instructions[0]
        np.testing.assert_array_equal(f["background"][...][..., ::-1], make_background())


def test_detector_file(codraw):
    eps = GeNeVAEpisodes(codraw / "codraw_train.h5")
    images = np.concatenate([e.images for e in eps]); objects = np.concatenate([e.objects for e in eps])
    coords = np.concatenate([e.coords for e in eps])
    with h5py.File(codraw / "codraw_obj_train.h5", "r") as f:
        assert len(f.keys()) == len(images)
        for i in (0, len(images) // 2, len(images) - 1):
            g = f[str(i)]
            np.testing.assert_array_equal(g["image"][...][..., ::-1], images[i])
            np.testing.assert_array_equal(g["objects"][...], objects[i])
            np.testing.assert_array_equal(g["coords"][...], coords[i])


def test_deterministic(codraw, tmp_path):
    again = make_codraw(tmp_path / "again", SIZES["train"], SIZES["val"], SIZES["test"], seed=SEED)
    for s in SPLITS:
        a, b = GeNeVAEpisodes(codraw / f"codraw_{s}.h5"), GeNeVAEpisodes(again / f"codraw_{s}.h5")
        assert all(x == y for x, y in zip(a, b))
    other = make_codraw(tmp_path / "other", 3, 0, 0, seed=SEED + 1)
    assert not (other / "codraw_val.h5").exists()                                  # empty splits are not written
    assert any(x != y for x, y in zip(GeNeVAEpisodes(other / "codraw_train.h5"), GeNeVAEpisodes(codraw / "codraw_train.h5")))
    # dialogue i of a split does not depend on the split's size
    assert GeNeVAEpisodes(other / "codraw_train.h5")[2] == codraw_episode(SEED + 1, "train", 2, scene_id="2")


def test_turns_dataset(codraw):
    turns = GeNeVATurns(codraw / "codraw_val.h5")
    eps = GeNeVAEpisodes(codraw / "codraw_val.h5")
    assert len(turns) == sum(len(e.images) for e in eps)
    item = turns[0]
    assert item["turn"] == 0 and item["instruction"] == eps[0].instructions[0]
    assert item["added"].sum() >= 1 and item["target"].shape == (3, 128, 128)


def test_bad_arguments(tmp_path):
    with pytest.raises(ValueError, match="n_val"): make_codraw(tmp_path, 2, -1, 0)
    with pytest.raises(ValueError, match="must be > 0"): make_codraw(tmp_path, 0, 0, 0)
    with pytest.raises(ValueError, match="split must be one of"): codraw_episode(0, "dev", 0)
