"""lib.data.geneva: GeNeVATurns under DataLoader worker processes (fork and spawn) and pickling; the fast writer
(HDF5's C functions) against the plain h5py writer on generated CoDraw and i-CLEVR data."""
import filecmp
import os
import pickle
import sys

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

import h5py

import lib.data.geneva as geneva
from lib.data.geneva import (Episode, GeNeVAEpisodes, GeNeVATurns, LazyH5File, collate_turns, read_detector_h5,
                             write_geneva_h5, write_objects_txt)


def _episodes(n: int, C: int = 58, seed: int = 0) -> list[Episode]:
    "n CoDraw-style dialogues of 1 to 4 turns, one coloured square added per turn."
    rng = np.random.default_rng(seed)
    eps = []
    for i in range(n):
        T = int(rng.integers(1, 5))
        img = np.full((128, 128, 3), 200, np.uint8)
        images, objects, coords = [], np.zeros((T, C)), np.zeros((T, C, 3))
        for t, c in enumerate(rng.choice(C, T, replace=False)):
            x, y = rng.integers(8, 120, 2)
            img[y - 6:y + 6, x - 6:x + 6] = rng.integers(0, 256, 3)
            images.append(img.copy())
            if t: objects[t], coords[t] = objects[t - 1], coords[t - 1]
            objects[t, c], coords[t, c] = 1, (x, y, rng.integers(0, 3))
        eps.append(Episode(np.stack(images), [f"<teller> turn {t} of {i}" for t in range(T)],
                           objects.astype(np.float32), coords.astype(np.float32), str(i)))
    return eps


@pytest.fixture(scope="module")
def codraw_file(tmp_path_factory):
    d = tmp_path_factory.mktemp("codraw")
    bg = np.zeros((128, 128, 3), np.uint8); bg[64:] = (60, 160, 60)
    path = write_geneva_h5(d / "codraw_train.h5", _episodes(23), "codraw", bg, [f"o{i}" for i in range(58)])
    write_objects_txt(d / "objects.txt", [f"o{i}" for i in range(58)])
    return path


def _batches(ds, **loader_kw) -> list[dict]:
    return list(DataLoader(ds, batch_size=5, shuffle=False, collate_fn=collate_turns, **loader_kw))


def _assert_same(batches_a: list[dict], batches_b: list[dict]) -> None:
    assert len(batches_a) == len(batches_b)
    for a, b in zip(batches_a, batches_b):
        assert a.keys() == b.keys()
        for k in a:
            if isinstance(a[k], torch.Tensor): assert torch.equal(a[k], b[k]), k
            else: assert a[k] == b[k], k


def test_workers_yield_the_same_items(codraw_file):
    ds = GeNeVATurns(codraw_file, image_size=64)
    single = _batches(ds, num_workers=0)
    assert sum(len(b["turn"]) for b in single) == len(ds) > 23
    assert single[0]["source"].shape == (5, 3, 64, 64) and single[0]["added"].shape == (5, 58)
    # the parent has an open handle now (num_workers=0 read through it): forked workers must open their own
    assert ds.episodes._h5._file is not None
    _assert_same(single, _batches(ds, num_workers=2))
    _assert_same(single, _batches(ds, num_workers=2, multiprocessing_context="spawn"))
    ds.close()


def test_fresh_dataset_in_workers(codraw_file):
    "A dataset that never opened its file in the parent works in workers too."
    ds = GeNeVATurns(codraw_file)
    assert ds.episodes._h5._file is None
    workers = _batches(ds, num_workers=2)
    _assert_same(workers, _batches(GeNeVATurns(codraw_file), num_workers=0))


def test_pickle_after_use(codraw_file):
    ds = GeNeVATurns(codraw_file)
    first = ds[7]
    blob = pickle.dumps(ds)                      # an open h5py handle would not pickle
    assert ds.episodes._h5._file is not None     # ...and the original keeps its handle
    again = pickle.loads(blob)
    assert again.episodes._h5._file is None
    item = again[7]
    for k, v in first.items():
        assert torch.equal(v, item[k]) if isinstance(v, torch.Tensor) else v == item[k]
    assert len(again) == len(ds) and again.episodes.keys == ds.episodes.keys
    ds.close(); again.close()


def test_lazy_handle_reopens_after_fork(codraw_file, monkeypatch):
    "A handle opened in another process (a different pid) is replaced, not reused."
    h = LazyH5File(codraw_file)
    f = h()
    monkeypatch.setattr("os.getpid", lambda: -1)
    n = len(f)
    g = h()
    assert g is not f and len(g) == n
    assert not f.id.valid                        # the inherited handle was closed, not reused
    h.close()


def _generated(dataset: str):
    "(episodes, background, entities) from the synthetic generators."
    if dataset == "codraw":
        from lib.synth.codraw import CODRAW_OBJECTS, codraw_episode, make_background
        bg = make_background()
        return [codraw_episode(3, "val", i, bg, scene_id=str(i)) for i in range(40)], bg, CODRAW_OBJECTS
    from lib.synth.iclevr import ENTITIES, background_raw, iclevr_episodes
    return iclevr_episodes(12, 3, "val"), background_raw(), ENTITIES


def _write_both(tmp_path, monkeypatch, dataset, eps, bg, names):
    "The same episodes through the fast writer and the plain h5py one; returns the four paths."
    paths = {}
    for kind in ("fast", "plain"):
        if kind == "plain": monkeypatch.setattr(geneva, "_hdf5_functions", lambda: None)
        main, det = tmp_path / kind / f"{dataset}_val.h5", tmp_path / kind / f"{dataset}_obj_val.h5"
        write_geneva_h5(main, eps, dataset, bg, names, detector_path=det)
        paths[kind] = (main, det)
    monkeypatch.undo()
    return paths


def test_fast_path_is_available_on_linux():
    if sys.platform.startswith("linux"): assert geneva._hdf5_functions() is not None


@pytest.mark.parametrize("dataset", ["codraw", "iclevr"])
def test_fast_writer_writes_the_plain_writers_bytes(tmp_path, monkeypatch, dataset):
    eps, bg, names = _generated(dataset)
    paths = _write_both(tmp_path, monkeypatch, dataset, eps, bg, names)
    for fast, plain in zip(paths["fast"], paths["plain"]):
        assert filecmp.cmp(fast, plain, shallow=False), f"{fast} differs from {plain}"
    write_objects_txt(tmp_path / "fast" / "objects.txt", names)
    with GeNeVAEpisodes(paths["fast"][0]) as read_back:
        assert len(read_back) == len(eps)
        for i in (0, len(eps) // 2, len(eps) - 1):
            want = eps[i] if dataset == "codraw" else Episode(eps[i].images, eps[i].instructions, eps[i].objects,
                                                               eps[i].coords, eps[i].scene_id.zfill(6))
            assert read_back[i] == want
    det = read_detector_h5(paths["fast"][1])
    assert np.array_equal(det["images"], np.concatenate([e.images for e in eps]))
    assert np.array_equal(det["objects"], np.concatenate([e.objects for e in eps]))


def test_fast_writer_follows_h5py_track_order(tmp_path, monkeypatch):
    # h5py's global track_order changes the group and dataset creation lists; both writers must follow it
    eps, bg, names = _episodes(5), np.zeros((128, 128, 3), np.uint8), [f"o{i}" for i in range(58)]
    cfg = h5py.get_config(); saved = cfg.track_order
    cfg.track_order = True
    try: paths = _write_both(tmp_path, monkeypatch, "codraw", eps, bg, names)
    finally: cfg.track_order = saved
    for fast, plain in zip(paths["fast"], paths["plain"]):
        assert filecmp.cmp(fast, plain, shallow=False), f"{fast} differs from {plain}"
    with h5py.File(paths["fast"][0]) as f:
        assert f["0"].id.get_create_plist().get_link_creation_order()   # the setting did reach the file


def test_written_files_have_the_usual_permissions(tmp_path):
    umask = os.umask(0); os.umask(umask)
    bg = np.zeros((128, 128, 3), np.uint8)
    write_geneva_h5(tmp_path / "codraw_val.h5", _episodes(2), "codraw", bg, [f"o{i}" for i in range(58)],
                    detector_path=tmp_path / "codraw_obj_val.h5")
    for name in ("codraw_val.h5", "codraw_obj_val.h5"):
        assert (tmp_path / name).stat().st_mode & 0o777 == 0o666 & ~umask
    assert sorted(p.name for p in tmp_path.iterdir()) == ["codraw_obj_val.h5", "codraw_val.h5"]


def _record_reads(monkeypatch) -> list:
    "Every `h5py.Dataset[...]` read from now on, as (dataset name, selection)."
    reads, getitem = [], h5py.Dataset.__getitem__
    def recording(self, args, *rest, **kw):
        reads.append((self.name, args)); return getitem(self, args, *rest, **kw)
    monkeypatch.setattr(h5py.Dataset, "__getitem__", recording)
    return reads


def test_opening_reads_no_data(codraw_file, monkeypatch):
    "Opening checks metadata only: no dataset (not even the background) is read until it is used."
    reads = _record_reads(monkeypatch)
    eps, turns = GeNeVAEpisodes(codraw_file), GeNeVATurns(codraw_file)
    assert reads == []
    eps.background
    assert [name for name, _ in reads] == ["/background"]
    eps.close(); turns.close()


def test_a_turn_reads_only_its_slices(codraw_file, monkeypatch):
    "A turn reads its own rows (and the instructions up to it), never a whole episode."
    turns = GeNeVATurns(codraw_file)
    t = next(i for i in range(len(turns)) if turns.turn_of[i] == 2)
    reads = _record_reads(monkeypatch)
    item = turns[t]
    assert item["turn"] == 2 and len(item["history"]) == 2
    for name, sel in reads:
        assert sel != () and sel is not Ellipsis, f"{name} read whole"
        assert isinstance(sel, (int, np.integer)) or (isinstance(sel, slice) and sel.stop - (sel.start or 0) <= 3), (name, sel)
    turns.close()
