"""Trust nothing from disk: every dataset and weight reader, fed at least a thousand malformed files derived from small
valid ones, refuses each bad file with its format's own error naming the file, accepts the variations that are still
valid, and never hangs, crashes or swallows a bad file.

The readers and the error each may raise:

| reader | what "accepting" a file means | its error |
|---|---|---|
| `GeNeVAEpisodes` | open, read the background and every episode | `GeNeVAFormatError` |
| `GeNeVATurns` | open, read every turn, `collate_turns` them all | `GeNeVAFormatError` |
| `TurnEmbeddings` | open against its (valid) dataset, read every dialogue and every turn | `EmbeddingsFormatError` |
| `GeNeVATurns+emb` | a valid dataset with the embedding file: every turn, collated | `EmbeddingsFormatError` |
| `read_detector_h5` | read the whole detector file | `GeNeVAFormatError` |
| `load_evaluator` | load the checkpoint into an evaluator | `EvaluatorFormatError` |

Each case runs in a forked child (forked once, and again only after a crash or a hang), so a segfault in a C
library, an endless loop (a case running past `CASE_LIMIT_S`) or an allocation beyond the child's memory limit is
reported against its case instead of taking the test run down. A segfault or endless loop inside libhdf5 itself is
something no Python reader can always refuse (HDF5 2.0 spins forever on a global-heap record of size 0, which the
GeNeVA reader checks for before reading, and has crashed reading a damaged variable-length attribute): such
outcomes are counted as `hdf5-crash` / `hdf5-hang` and listed, not failed; any other crash or hang fails.

The mutations are the table `MUTATIONS` below: a name, the base files it edits, how many seeded variants to draw,
whether every variant must be refused (`invalid`), must still be read (`valid`) or may be either (`either`: random
bytes that may land in unused space), and what it does. Run with `-s` (or `-rA`) to see the counts per reader and
per mutation; `DRAWLAB_FUZZ_SEED` and `DRAWLAB_FUZZ_ROUNDS` (a multiplier of every mutation's variants) make deeper
runs by hand.
"""
from __future__ import annotations

import faulthandler
import json
import os
import pickle
import re
import resource
import select
import shutil
import signal
import time
import warnings
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import h5py
import numpy as np
import torch

from lib.data.embeddings import EmbeddingsFormatError, TurnEmbeddings, dialogue_digest, write_turn_embeddings
from lib.data.geneva import (Episode, GeNeVAEpisodes, GeNeVAFormatError, GeNeVATurns, collate_turns, read_detector_h5,
                             write_geneva_h5, write_objects_txt)
from lib.metrics.geneva import CompactEvaluator, EvaluatorFormatError, evaluator_checkpoint, load_evaluator

SEED = int(os.environ.get("DRAWLAB_FUZZ_SEED", 20261204))   # another seed, or more rounds, for a deeper run by hand
ROUNDS = int(os.environ.get("DRAWLAB_FUZZ_ROUNDS", 1))      # every mutation's variants are multiplied by this
CASE_LIMIT_S = 30.0          # a case running longer than this is a hang (the CPU may be shared: generous)
CHILD_MEMORY = 3 << 30       # bytes of address space a child may add to what the parent holds

# ----------------------------------------------------------------------------------------------------------------
# The small valid files every mutation starts from


@dataclass
class Base:
    kind: str        # 'codraw', 'iclevr', 'detector', 'embeddings', 'evaluator', 'evaluator-legacy'
    path: Path
    keys: list       # group keys (h5 files)
    lengths: list    # turns per group (episode and embedding files)


def _codraw_episodes():
    from lib.synth.codraw import codraw_episode, make_background
    bg = make_background()
    eps = [codraw_episode(0, "val", i, bg, scene_id=str(i)) for i in range(3)]
    # two turns at most: small files, so that byte mutations often hit the metadata
    return [Episode(e.images[:2], e.instructions[:2], e.objects[:2], e.coords[:2], e.scene_id) for e in eps], bg


def make_bases(root: Path) -> dict[str, Base]:
    "The valid files: CoDraw and i-CLEVR episode files, a detector file, an embedding file, two evaluator checkpoints."
    from lib.synth.codraw import CODRAW_OBJECTS
    from lib.synth.iclevr import ENTITIES, background_raw, iclevr_episodes
    root.mkdir(parents=True, exist_ok=True)
    cd_eps, cd_bg = _codraw_episodes()
    cd = write_geneva_h5(root / "codraw_val.h5", cd_eps, "codraw", cd_bg, CODRAW_OBJECTS,
                         detector_path=root / "codraw_obj_val.h5")
    write_objects_txt(root / "objects.txt", CODRAW_OBJECTS)
    ic_eps = iclevr_episodes(2, 0, "val")
    (root / "iclevr").mkdir(exist_ok=True)
    ic = write_geneva_h5(root / "iclevr" / "clevr_val.h5", ic_eps, "iclevr", background_raw(), ENTITIES)
    episodes = GeNeVAEpisodes(ic)
    rng = np.random.default_rng(0)
    L = episodes.lengths.tolist()
    lengths = [rng.integers(1, 5, n) for n in L]
    emb = write_turn_embeddings(root / "clevr_val_embeddings_fuzz.h5", episodes.keys,
                                [rng.normal(size=(n, 8)) for n in L],
                                [rng.normal(size=(n, 4, 8)) * (np.arange(4)[:, None] < m[:, None, None])
                                 for n, m in zip(L, lengths)], lengths,
                                meta={"encoder": "random", "instructions_sha1": dialogue_digest(episodes)})
    torch.manual_seed(0)
    ckpt = evaluator_checkpoint(CompactEvaluator(24, width=8).eval())
    ev = root / "clevr_compact_best_checkpoint.pth"; torch.save(ckpt, ev)
    legacy = root / "clevr_legacy_best_checkpoint.pth"; torch.save(ckpt, legacy, _use_new_zipfile_serialization=False)
    cd_lengths = [len(e) for e in cd_eps]
    return {"codraw": Base("codraw", cd, [str(i) for i in range(3)], cd_lengths),
            "iclevr": Base("iclevr", ic, list(episodes.keys), L),
            "detector": Base("detector", root / "codraw_obj_val.h5", [str(i) for i in range(sum(cd_lengths))], []),
            "embeddings": Base("embeddings", emb, list(episodes.keys), L),
            "evaluator": Base("evaluator", ev, [], []),
            "evaluator-legacy": Base("evaluator-legacy", legacy, [], [])}


# ----------------------------------------------------------------------------------------------------------------
# Mutations: each writes `dst` from `base` with the generator `rng`


def _bytes_edit(edit: Callable[[np.random.Generator, bytearray], bytes | bytearray]):
    def mutate(rng, base, dst): dst.write_bytes(bytes(edit(rng, bytearray(base.path.read_bytes()))))
    return mutate


def _truncate(rng, b): return b[:int(rng.integers(0, len(b)))]
def _truncate_tail(rng, b): return b[:len(b) - int(rng.integers(1, 65))]
def _random_file(rng, b): return rng.integers(0, 256, len(b), dtype=np.uint8).tobytes()
def _empty(rng, b): return b""
def _append(rng, b): return b + rng.integers(0, 256, int(rng.integers(1, 4096)), dtype=np.uint8).tobytes()


def _flip(n_max: int, region: int | None = None):
    def edit(rng, b):
        end = len(b) if region is None else min(region, len(b))
        for _ in range(int(rng.integers(1, n_max + 1))): b[int(rng.integers(0, end))] ^= int(rng.integers(1, 256))
        return b
    return edit


def _zero_block(rng, b):
    i = int(rng.integers(0, len(b))); b[i:i + 4096] = bytes(len(b[i:i + 4096])); return b


def _h5(edit: Callable):
    "A mutation that copies the base h5 file and edits it: `edit(f, rng, base)`."
    def mutate(rng, base, dst):
        shutil.copyfile(base.path, dst)
        with h5py.File(dst, "a") as f: edit(f, rng, base)
    return mutate


def _replace(g, name, data=None, **kw):
    if name in g: del g[name]
    return g.create_dataset(name, data=data, **kw)


def _pick(rng, base) -> str: return base.keys[int(rng.integers(len(base.keys)))]


def _text_key(f, key) -> str: return "utterences" if "utterences" in f[key] else "text"


def _set_value(name, value, where="random"):
    "Put `value` at one random entry of dataset `name` of a random group (as float64)."
    def edit(f, rng, base):
        key = _pick(rng, base)
        a = f[key][name][()].astype(np.float64)
        a.reshape(-1)[int(rng.integers(a.size))] = value
        _replace(f[key], name, a)
    return edit


def _del_key(name):
    def edit(f, rng, base):
        key = _pick(rng, base); del f[key][name if name != "text" else _text_key(f, key)]
    return edit


def _rename_key(name):
    def edit(f, rng, base):
        key = _pick(rng, base); g = f[key]; name_ = name if name != "text" else _text_key(f, key)
        g.move(name_, name_ + "_old")
    return edit


def _reshape(name, shape_of: Callable):
    "Replace dataset `name` of a random group by zeros of `shape_of(old_shape)` (same dtype)."
    def edit(f, rng, base):
        key = _pick(rng, base); d = f[key][name]
        _replace(f[key], name, np.zeros(shape_of(d.shape), d.dtype))
    return edit


def _retype(name, dtype):
    def edit(f, rng, base):
        key = _pick(rng, base); a = f[key][name][()]
        _replace(f[key], name, a.astype(dtype))
    return edit


def _bomb(name, shape_of: Callable, dtype=None):
    "Dataset `name` of a random group re-declared chunked and compressed at a huge shape: a few KB on disk."
    def edit(f, rng, base):
        key = _pick(rng, base); d = f[key][name]
        shape = shape_of(d.shape); dt = dtype or d.dtype
        chunks = tuple(max(1, min(s, 4096)) for s in shape[:-1]) + (max(1, min(shape[-1], 4096)),)
        chunks = tuple(min(c, max(1, 2 ** 20 // max(1, int(np.prod(chunks[1:]))))) if i == 0 else c for i, c in enumerate(chunks))
        _replace(f[key], name, shape=shape, dtype=dt, chunks=chunks, compression="gzip")
    return edit


def _long_episode(turns: int):
    "One CoDraw episode re-declared with `turns` turns of zeros (compressed): images, text, objects, coords."
    def edit(f, rng, base):
        key = _pick(rng, base); g = f[key]
        C, k = g["coords"].shape[1:]
        _replace(g, "images", shape=(turns, 128, 128, 3), dtype=np.uint8, chunks=(1, 128, 128, 3), compression="gzip")
        _replace(g, "objects", shape=(turns, C), dtype=g["objects"].dtype, chunks=(min(turns, 4096), C), compression="gzip")
        _replace(g, "coords", shape=(turns, C, k), dtype=g["coords"].dtype, chunks=(min(turns, 1024), C, k), compression="gzip")
        _replace(g, "utterences", shape=(turns,), dtype=h5py.string_dtype(), chunks=(min(turns, 4096),), compression="gzip")
    return edit


def _text(value: str | bytes):
    "Replace a random group's text (CoDraw: one utterance; i-CLEVR: the JSON) by `value`."
    def edit(f, rng, base):
        key = _pick(rng, base); name = _text_key(f, key); g = f[key]
        if name == "text": _replace(g, "text", value, dtype=h5py.string_dtype())
        else:
            texts = list(g["utterences"][()]); texts[int(rng.integers(len(texts)))] = value
            _replace(g, "utterences", np.array(texts, dtype=object), dtype=h5py.string_dtype())
    return edit


def _json_text(make: Callable):
    def edit(f, rng, base):
        key = _pick(rng, base)
        if "text" not in f[key]: return _text(make(5))(f, rng, base)
        n = f[key]["images"].shape[0]
        _replace(f[key], "text", make(n), dtype=h5py.string_dtype())
    return edit


def _dup_key(f, rng, base):
    "A second group with the same number: '0' and '00', or '000000' and '0'."
    key = _pick(rng, base)
    other = str(int(key)) if len(key) > len(str(int(key))) else "0" + key
    f.copy(f[key], other)


def _group_to(what):
    def edit(f, rng, base):
        key = _pick(rng, base); del f[key]
        if what == "empty": f.create_group(key)
        elif what == "dataset": f[key] = np.zeros(3)
        elif what == "dangling": f[key] = h5py.SoftLink("/nowhere")
        elif what == "external": f[key] = h5py.ExternalLink("/nonexistent/file.h5", "/0")
    return edit


def _drop_groups(f, rng, base):
    for key in base.keys: del f[key]


def _extra_group(name):
    def edit(f, rng, base): f.copy(f[_pick(rng, base)], name)
    return edit


def _extra_key(f, rng, base): f[_pick(rng, base)]["notes"] = np.arange(3)
def _root_attr(f, rng, base): f.attrs["junk"] = rng.integers(0, 256, 64, dtype=np.uint8)


def _background(data=None, **kw):
    def edit(f, rng, base): _replace(f, "background", data, **kw)
    return edit


def _entities(value):
    def edit(f, rng, base): _replace(f, "entities", value, dtype=h5py.string_dtype() if isinstance(value, (str, bytes)) else None)
    return edit


def _scene_id(value):
    def edit(f, rng, base):
        key = _pick(rng, base)
        _replace(f[key], "scene_id", value, dtype=h5py.string_dtype() if isinstance(value, (str, bytes)) else None)
    return edit


def _recompress_then_flip(rng, base, dst):
    "Images stored gzip-compressed in chunks, then bytes of the file flipped: damaged chunks fail to inflate."
    shutil.copyfile(base.path, dst)
    with h5py.File(dst, "a") as f:
        for key in base.keys:
            a = f[key]["images"][()]
            _replace(f[key], "images", a, chunks=(1, 128, 128, 3), compression="gzip")
    b = bytearray(dst.read_bytes())
    for _ in range(16): b[int(rng.integers(len(b) // 4, len(b)))] ^= 0xFF
    dst.write_bytes(bytes(b))


def _heap_edit(how):
    "Damage the global heap behind a random group's variable-length text (its collection, or one string's heap ID)."
    def mutate(rng, base, dst):
        shutil.copyfile(base.path, dst)
        with h5py.File(dst, "r") as f:
            key = _pick(rng, base); d = f[key][_text_key(f, key)]
            offset, n = d.id.get_offset(), int(np.prod(d.shape))
        b = bytearray(dst.read_bytes())
        i = offset + 16 * int(rng.integers(n))              # one heap ID: length (4), collection (8), record (4)
        addr = int.from_bytes(b[i + 4:i + 12], "little")
        if how == "zero-record": b[addr + 16:addr + 32] = bytes(16)          # the first record's header
        elif how == "missing-record": b[i + 12:i + 16] = (999).to_bytes(4, "little")
        elif how == "long-string": b[i:i + 4] = (2 ** 31).to_bytes(4, "little")
        elif how == "bad-collection": b[i + 4:i + 12] = (len(b) - 8).to_bytes(8, "little")
        dst.write_bytes(bytes(b))
    return mutate


# embeddings


def _emb_set(name, value):
    def edit(f, rng, base):
        key = _pick(rng, base); a = f[key][name][()]
        a = a.astype(np.float64) if name != "turns_text_length" else a
        a.reshape(-1)[int(rng.integers(a.size))] = value
        _replace(f[key], name, a)
    return edit


def _emb_length(how):
    def edit(f, rng, base):
        key = _pick(rng, base); n = f[key]["turns_text_length"][()]; width = f[key]["turns_word_embeddings"].shape[1]
        t = int(rng.integers(len(n)))
        n[t] = {"minus1": -1, "zero": 0, "wider": width + 1, "huge": 2 ** 62}[how]
        _replace(f[key], "turns_text_length", n)
    return edit


def _meta(value):
    def edit(f, rng, base):
        if value is None: del f.attrs["drawlab"]
        elif callable(value): f.attrs["drawlab"] = value(json.loads(f.attrs["drawlab"]))
        else: f.attrs["drawlab"] = value
    return edit


# evaluator


def _ckpt_edit(edit: Callable):
    "Load the base checkpoint (safely), change it with `edit(ckpt, rng)`, save it."
    def mutate(rng, base, dst):
        ckpt = torch.load(base.path, weights_only=True)
        ckpt = edit(ckpt, rng)
        torch.save(ckpt, dst, _use_new_zipfile_serialization=base.kind == "evaluator")
    return mutate


def _state(edit: Callable):
    def change(ckpt, rng):
        state = {k: v.clone() for k, v in ckpt["state_dict"].items()}
        edit(state, rng)
        return dict(ckpt, state_dict=state)
    return change


def _tensor_value(value):
    def edit(state, rng):
        names = [k for k, v in state.items() if v.is_floating_point()]
        v = state[names[int(rng.integers(len(names)))]]
        v.view(-1)[int(rng.integers(v.numel()))] = value
    return edit


def _random_object(rng, depth=0):
    kind = int(rng.integers(0, 8 if depth < 3 else 5))
    if kind == 0: return int(rng.integers(-2 ** 62, 2 ** 62))
    if kind == 1: return float(rng.normal() * 10 ** int(rng.integers(0, 300)))
    if kind == 2: return rng.integers(0, 256, int(rng.integers(0, 40)), dtype=np.uint8).tobytes().decode("latin-1")
    if kind == 3: return None
    if kind == 4: return bool(rng.integers(2))
    n = int(rng.integers(0, 5))
    if kind == 5: return [_random_object(rng, depth + 1) for _ in range(n)]
    if kind == 6: return tuple(_random_object(rng, depth + 1) for _ in range(n))
    return {str(_random_object(rng, depth + 1))[:20]: _random_object(rng, depth + 1) for _ in range(n)}


def _random_pickle(rng, base, dst): dst.write_bytes(pickle.dumps(_random_object(rng), protocol=int(rng.integers(0, 6))))
def _opcode_soup(rng, base, dst): dst.write_bytes(b"\x80\x02" + rng.integers(0, 256, int(rng.integers(1, 400)), dtype=np.uint8).tobytes())


class _Harmless:
    def __reduce__(self): return (os.getcwd, ())   # a pickle asking to call a function (harmless if it ran)


def _unsafe_pickle(rng, base, dst): dst.write_bytes(pickle.dumps({"state_dict": _Harmless()}))


def _truncated_pickle(rng, base, dst):
    blob = pickle.dumps(torch.load(base.path, weights_only=True)); dst.write_bytes(blob[:int(rng.integers(1, len(blob)))])


@dataclass
class Mutation:
    name: str
    targets: tuple   # base kinds it applies to
    variants: int    # seeded variants per target
    expect: str      # 'invalid' (must be refused), 'valid' (must be read), 'either'
    what: str
    make: Callable
    ignored_by: tuple = ()   # readers that never read what this breaks: for them any clean outcome passes


H5 = ("codraw", "iclevr", "detector", "embeddings")
EPISODES = ("codraw", "iclevr")
EVAL = ("evaluator", "evaluator-legacy")
ALL = H5 + EVAL

MUTATIONS = [
    # -- the bytes of any file
    Mutation("truncate", ALL, 18, "invalid", "cut the file at a random length", _bytes_edit(_truncate)),
    Mutation("truncate-tail", ALL, 4, "invalid", "drop the last 1-64 bytes", _bytes_edit(_truncate_tail)),
    Mutation("empty-file", ALL, 1, "invalid", "zero bytes", _bytes_edit(_empty)),
    Mutation("random-file", ALL, 6, "invalid", "random bytes of the same length", _bytes_edit(_random_file)),
    Mutation("flip-bytes", ALL, 48, "either", "xor 1-8 random bytes anywhere", _bytes_edit(_flip(8))),
    Mutation("flip-header", ALL, 20, "either", "xor 1-4 bytes among the first 2 KB (superblock, root group, zip header)",
             _bytes_edit(_flip(4, 2048))),
    Mutation("zero-block", ALL, 8, "either", "zero 4 KB at a random offset", _bytes_edit(_zero_block)),
    Mutation("append-garbage", ALL, 2, "either", "random bytes after the end", _bytes_edit(_append)),
    # -- structure of the episode files
    Mutation("missing-images", EPISODES, 3, "invalid", "delete a group's images", _h5(_del_key("images"))),
    Mutation("missing-text", EPISODES, 3, "invalid", "delete a group's utterences/text", _h5(_del_key("text"))),
    Mutation("missing-objects", EPISODES, 3, "invalid", "delete a group's objects", _h5(_del_key("objects"))),
    Mutation("missing-coords", EPISODES, 3, "invalid", "delete a group's coords", _h5(_del_key("coords"))),
    Mutation("missing-scene-id", EPISODES, 3, "invalid", "delete a group's scene_id", _h5(_del_key("scene_id"))),
    Mutation("renamed-objects", EPISODES, 3, "invalid", "rename a group's objects", _h5(_rename_key("objects"))),
    Mutation("renamed-text", EPISODES, 3, "invalid", "rename a group's text", _h5(_rename_key("text"))),
    Mutation("missing-background", EPISODES, 1, "invalid", "delete the background", _h5(lambda f, r, b: f.__delitem__("background"))),
    Mutation("missing-entities", ("iclevr",), 1, "invalid", "delete i-CLEVR's entities", _h5(lambda f, r, b: f.__delitem__("entities"))),
    Mutation("images-small", EPISODES, 2, "invalid", "images (T,64,64,3)", _h5(_reshape("images", lambda s: (s[0], 64, 64, 3)))),
    Mutation("images-rgba", EPISODES, 2, "invalid", "images (T,128,128,4)", _h5(_reshape("images", lambda s: (*s[:3], 4)))),
    Mutation("images-float", EPISODES, 2, "invalid", "images as float32", _h5(_retype("images", np.float32))),
    Mutation("objects-wide", EPISODES, 2, "invalid", "objects (T,C+1) in one group", _h5(_reshape("objects", lambda s: (s[0], s[1] + 1)))),
    Mutation("objects-long", EPISODES, 2, "invalid", "objects (T+1,C)", _h5(_reshape("objects", lambda s: (s[0] + 1, s[1])))),
    Mutation("objects-1d", EPISODES, 2, "invalid", "objects (T*C,)", _h5(_reshape("objects", lambda s: (s[0] * s[1],)))),
    Mutation("coords-k2", EPISODES, 3, "invalid", "coords (T,C,2) in one group: k differs across episodes",
             _h5(_reshape("coords", lambda s: (*s[:2], 2)))),
    Mutation("objects-strings", EPISODES, 2, "invalid", "objects as strings",
             _h5(lambda f, r, b: _replace(f[_pick(r, b)], "objects", np.array([["x"]], dtype=object), dtype=h5py.string_dtype()))),
    Mutation("objects-complex", EPISODES, 2, "invalid", "objects as complex numbers", _h5(_retype("objects", np.complex64))),
    Mutation("objects-bool", EPISODES, 2, "invalid", "objects as booleans", _h5(_retype("objects", np.bool_))),
    Mutation("objects-int", ("iclevr",), 2, "valid", "i-CLEVR objects stored as integers", _h5(_retype("objects", np.int64))),
    Mutation("coords-float", ("codraw",), 2, "valid", "CoDraw coords stored as float32", _h5(_retype("coords", np.float32))),
    Mutation("objects-nan", EPISODES, 4, "invalid", "one object entry NaN", _h5(_set_value("objects", np.nan))),
    Mutation("objects-inf", EPISODES, 3, "invalid", "one object entry inf", _h5(_set_value("objects", np.inf))),
    Mutation("objects-negative", EPISODES, 3, "invalid", "one object entry -1", _h5(_set_value("objects", -1))),
    Mutation("objects-huge", EPISODES, 3, "invalid", "one object entry 1e30", _h5(_set_value("objects", 1e30))),
    Mutation("objects-two", EPISODES, 2, "invalid", "one object entry 2 (objects are 0/1)", _h5(_set_value("objects", 2))),
    Mutation("coords-nan", EPISODES, 4, "invalid", "one coordinate NaN", _h5(_set_value("coords", np.nan))),
    Mutation("coords-inf", EPISODES, 3, "invalid", "one coordinate -inf", _h5(_set_value("coords", -np.inf))),
    Mutation("coords-huge", EPISODES, 3, "invalid", "one coordinate 1e30", _h5(_set_value("coords", 1e30))),
    Mutation("coords-far-negative", EPISODES, 2, "invalid", "one coordinate -1e6", _h5(_set_value("coords", -1e6))),
    Mutation("coords-slightly-negative", EPISODES, 2, "valid", "one coordinate -1.5 (an object over the edge)",
             _h5(_set_value("coords", -1.5))),
    Mutation("text-bad-utf8", EPISODES, 3, "invalid", "a text that is not UTF-8", _h5(_text(b"\xff\xfe turn \xc3"))),
    Mutation("text-not-json", ("iclevr",), 2, "invalid", "i-CLEVR text that is not JSON", _h5(_json_text(lambda n: "Add a {"))),
    Mutation("text-json-numbers", ("iclevr",), 2, "invalid", "i-CLEVR text a JSON list of numbers",
             _h5(_json_text(lambda n: json.dumps(list(range(n)))))),
    Mutation("text-json-object", ("iclevr",), 1, "invalid", "i-CLEVR text a JSON object", _h5(_json_text(lambda n: '{"a": 1}'))),
    Mutation("text-short", ("iclevr",), 2, "invalid", "i-CLEVR text with one instruction too few",
             _h5(_json_text(lambda n: json.dumps(["Add a cube"] * (n - 1))))),
    Mutation("text-deep-json", ("iclevr",), 2, "invalid", "i-CLEVR text nested 100,000 lists deep",
             _h5(_json_text(lambda n: "[" * 100_000 + "]" * 100_000))),
    Mutation("utterences-short", ("codraw",), 2, "invalid", "CoDraw utterences one fewer than the images",
             _h5(lambda f, r, b: (lambda k: _replace(f[k], "utterences", np.array(list(f[k]["utterences"][()])[:-1] or [b""] * 5, dtype=object),
                                                     dtype=h5py.string_dtype()))(_pick(r, b)))),
    Mutation("text-as-int", EPISODES, 2, "invalid", "the text dataset holds integers",
             _h5(lambda f, r, b: (lambda k: _replace(f[k], _text_key(f, k), np.arange(f[k]["images"].shape[0]) if _text_key(f, k) == "utterences" else 7))(_pick(r, b)))),
    Mutation("text-empty-strings", ("codraw",), 1, "valid", "CoDraw utterances that are empty strings", _h5(_text(""))),
    Mutation("scene-id-array", EPISODES, 2, "invalid", "scene_id an array of 3", _h5(_scene_id(np.arange(3)))),
    Mutation("scene-id-float", EPISODES, 1, "invalid", "scene_id a float", _h5(_scene_id(1.5))),
    Mutation("scene-id-bad-utf8", EPISODES, 2, "invalid", "scene_id a string that is not UTF-8 (turns carry no scene id)",
             _h5(_scene_id(b"\xff\xfe\xc3")), ignored_by=("GeNeVATurns",)),
    Mutation("background-shape", EPISODES, 1, "invalid", "background (128,128)", _h5(_background(np.zeros((128, 128), np.uint8)))),
    Mutation("background-float", EPISODES, 1, "invalid", "background float32", _h5(_background(np.zeros((128, 128, 3), np.float32)))),
    Mutation("background-bomb", EPISODES, 1, "invalid", "background declared 60000x60000x3 (10 GiB), compressed, unwritten",
             _h5(_background(shape=(60000, 60000, 3), dtype=np.uint8, chunks=(256, 256, 3), compression="gzip"))),
    Mutation("entities-not-json", ("iclevr",), 1, "invalid", "entities not JSON", _h5(_entities("cube red, cube blue"))),
    Mutation("entities-numbers", ("iclevr",), 1, "invalid", "entities a JSON list of numbers", _h5(_entities(json.dumps(list(range(24)))))),
    Mutation("entities-short", ("iclevr",), 1, "invalid", "entities one name short", _h5(_entities(json.dumps(["a"] * 23)))),
    Mutation("entities-array", ("iclevr",), 1, "invalid", "entities an integer array", _h5(_entities(np.arange(24)))),
    Mutation("images-bomb", EPISODES, 2, "invalid", "an episode of 10^7 turns declared (images, text, objects, coords), compressed",
             _h5(lambda f, r, b: _long_episode(10 ** 7)(f, r, b) if "utterences" in f[b.keys[0]] else
                 _bomb("images", lambda s: (10 ** 7, 128, 128, 3))(f, r, b))),
    Mutation("objects-bomb", EPISODES, 2, "invalid", "objects declared (T, 10^9) compressed",
             _h5(_bomb("objects", lambda s: (s[0], 10 ** 9)))),
    Mutation("coords-bomb", EPISODES, 2, "invalid", "coords declared (T, C, 10^8) compressed",
             _h5(_bomb("coords", lambda s: (*s[:2], 10 ** 8)))),
    Mutation("long-episode", ("codraw",), 1, "valid", "a CoDraw episode of 300 turns of zeros (within MAX_TURNS)",
             _h5(_long_episode(300))),
    Mutation("heap-zero-record", EPISODES, 3, "invalid", "a text's global-heap record header zeroed (libhdf5 2.0 would spin)",
             _heap_edit("zero-record")),
    Mutation("heap-missing-record", EPISODES, 3, "invalid", "a text's heap ID names a record its collection lacks",
             _heap_edit("missing-record")),
    Mutation("heap-long-string", EPISODES, 3, "invalid", "a text's heap ID claims 2 GiB", _heap_edit("long-string")),
    Mutation("heap-bad-collection", EPISODES, 3, "invalid", "a text's heap ID points at no collection",
             _heap_edit("bad-collection")),
    Mutation("compressed-flipped", EPISODES, 10, "either", "images gzip-compressed, then 16 bytes flipped in the data",
             _recompress_then_flip),
    Mutation("duplicate-numeric-key", EPISODES + ("detector", "embeddings"), 3, "invalid",
             "a copy of a group under the same number ('0' and '00')", _h5(_dup_key)),
    Mutation("long-digit-key", EPISODES + ("detector",), 1, "invalid", "a group named by a 40-digit number",
             _h5(_extra_group("1" * 40))),
    Mutation("unicode-digit-key", EPISODES + ("detector",), 1, "valid", "a group named '²' (a digit, not ASCII): ignored",
             _h5(_extra_group("\u00b2"))),
    Mutation("extra-named-group", EPISODES + ("detector",), 1, "valid", "an extra group 'notes' (not a number): ignored",
             _h5(_extra_group("notes"))),
    Mutation("extra-key", EPISODES + ("detector",), 2, "valid", "an extra dataset inside a group", _h5(_extra_key)),
    Mutation("root-attribute", H5, 1, "valid", "a junk attribute on the root", _h5(_root_attr)),
    Mutation("empty-group", H5, 2, "invalid", "a group emptied", _h5(_group_to("empty"))),
    Mutation("group-is-dataset", H5, 2, "invalid", "a group replaced by a dataset", _h5(_group_to("dataset"))),
    Mutation("dangling-link", H5, 2, "invalid", "a group replaced by a soft link to nothing", _h5(_group_to("dangling"))),
    Mutation("external-link", H5, 2, "invalid", "a group replaced by an external link to a missing file", _h5(_group_to("external"))),
    Mutation("no-groups", H5, 1, "invalid", "every group deleted", _h5(_drop_groups)),
    # -- detector files
    Mutation("det-missing", ("detector",), 4, "invalid", "delete one of a group's image/objects/coords/scene_id",
             _h5(lambda f, r, b: f[_pick(r, b)].__delitem__(["image", "objects", "coords", "scene_id"][int(r.integers(4))]))),
    Mutation("det-image-shape", ("detector",), 2, "invalid", "an image (64,64,3)", _h5(_reshape("image", lambda s: (64, 64, 3)))),
    Mutation("det-objects-wide", ("detector",), 2, "invalid", "one group's objects (C+1,)", _h5(_reshape("objects", lambda s: (s[0] + 1,)))),
    Mutation("det-coords-k", ("detector",), 2, "invalid", "one group's coords (C,2)", _h5(_reshape("coords", lambda s: (s[0], 2)))),
    Mutation("det-objects-nan", ("detector",), 2, "invalid", "an object entry NaN", _h5(_set_value("objects", np.nan))),
    Mutation("det-objects-negative", ("detector",), 2, "invalid", "an object entry -5", _h5(_set_value("objects", -5))),
    Mutation("det-coords-huge", ("detector",), 2, "invalid", "a coordinate 1e30", _h5(_set_value("coords", 1e30))),
    Mutation("det-objects-bomb", ("detector",), 2, "invalid", "objects declared (10^9,) compressed",
             _h5(_bomb("objects", lambda s: (10 ** 9,)))),
    Mutation("det-image-bomb", ("detector",), 1, "invalid", "an image declared (10^5,128,128,3) compressed",
             _h5(_bomb("image", lambda s: (10 ** 5, 128, 128, 3)))),
    Mutation("det-scene-id-bad-utf8", ("detector",), 1, "invalid", "scene_id not UTF-8", _h5(_scene_id(b"\xc3\x28"))),
    # -- embedding files
    Mutation("emb-missing-key", ("embeddings",), 3, "invalid", "delete one of a group's three keys",
             _h5(lambda f, r, b: f[_pick(r, b)].__delitem__(["turns_text_embedding", "turns_word_embeddings", "turns_text_length"][int(r.integers(3))]))),
    Mutation("emb-sentence-nan", ("embeddings",), 3, "invalid", "a sentence vector entry NaN", _h5(_emb_set("turns_text_embedding", np.nan))),
    Mutation("emb-words-inf", ("embeddings",), 3, "invalid", "a token memory entry inf", _h5(_emb_set("turns_word_embeddings", np.inf))),
    Mutation("emb-length-minus1", ("embeddings",), 3, "invalid", "a text length -1", _h5(_emb_length("minus1"))),
    Mutation("emb-length-zero", ("embeddings",), 2, "invalid", "a text length 0", _h5(_emb_length("zero"))),
    Mutation("emb-length-wider", ("embeddings",), 3, "invalid", "a text length one wider than the stored memories",
             _h5(_emb_length("wider"))),
    Mutation("emb-length-huge", ("embeddings",), 2, "invalid", "a text length 2^62", _h5(_emb_length("huge"))),
    Mutation("emb-length-float", ("embeddings",), 1, "invalid", "text lengths stored as floats", _h5(_retype("turns_text_length", np.float32))),
    Mutation("emb-sentence-wide", ("embeddings",), 2, "invalid", "a group's sentence vectors (L,D+1)",
             _h5(_reshape("turns_text_embedding", lambda s: (s[0], s[1] + 1)))),
    Mutation("emb-words-wide", ("embeddings",), 2, "invalid", "a group's token memories (L,W,D+1)",
             _h5(_reshape("turns_word_embeddings", lambda s: (*s[:2], s[2] + 1)))),
    Mutation("emb-words-empty", ("embeddings",), 1, "invalid", "a group's token memories (L,0,D)",
             _h5(_reshape("turns_word_embeddings", lambda s: (s[0], 0, s[2])))),
    Mutation("emb-meta-not-json", ("embeddings",), 1, "invalid", "the 'drawlab' attribute not JSON", _h5(_meta("{format"))),
    Mutation("emb-meta-list", ("embeddings",), 1, "invalid", "the 'drawlab' attribute a JSON list", _h5(_meta("[1, 2]"))),
    Mutation("emb-meta-array", ("embeddings",), 1, "invalid", "the 'drawlab' attribute an integer array", _h5(_meta(np.arange(4)))),
    Mutation("emb-memory-len-huge", ("embeddings",), 1, "invalid", "memory_len 10^12",
             _h5(_meta(lambda m: json.dumps({**m, "memory_len": 10 ** 12})))),
    Mutation("emb-memory-len-text", ("embeddings",), 1, "invalid", "memory_len a string",
             _h5(_meta(lambda m: json.dumps({**m, "memory_len": "x"})))),
    Mutation("emb-memory-len-small", ("embeddings",), 1, "invalid", "memory_len 1, narrower than the stored memories",
             _h5(_meta(lambda m: json.dumps({**m, "memory_len": 1})))),
    Mutation("emb-memory-len-wide", ("embeddings",), 1, "valid", "memory_len 64: more padding", _h5(_meta(lambda m: json.dumps({**m, "memory_len": 64})))),
    Mutation("emb-no-meta", ("embeddings",), 1, "valid", "no 'drawlab' attribute (as official files)", _h5(_meta(None))),
    Mutation("emb-meta-dim", ("embeddings",), 1, "invalid", "the attribute's dim disagrees with the vectors",
             _h5(_meta(lambda m: json.dumps({**m, "dim": m["dim"] + 1})))),
    Mutation("emb-old-format", ("embeddings",), 1, "invalid", "an older format", _h5(_meta(lambda m: json.dumps({**m, "format": "old"})))),
    Mutation("emb-other-digest", ("embeddings",), 1, "invalid", "computed from other instructions",
             _h5(_meta(lambda m: json.dumps({**m, "instructions_sha1": "0" * 40})))),
    Mutation("emb-extra-group", ("embeddings",), 1, "invalid", "a group the dataset lacks", _h5(_extra_group("999999"))),
    Mutation("emb-words-bomb", ("embeddings",), 2, "invalid", "token memories declared (L, 10^6, D) compressed",
             _h5(_bomb("turns_word_embeddings", lambda s: (s[0], 10 ** 6, s[2])))),
    Mutation("emb-dim-bomb", ("embeddings",), 2, "invalid", "sentence vectors declared (L, 10^7) compressed",
             _h5(_bomb("turns_text_embedding", lambda s: (s[0], 10 ** 7)))),
    Mutation("emb-turns-bomb", ("embeddings",), 2, "invalid", "lengths declared (10^8,) compressed",
             _h5(_bomb("turns_text_length", lambda s: (10 ** 8,)))),
    # -- evaluator checkpoints
    Mutation("ckpt-nan", EVAL, 5, "invalid", "one weight NaN", _ckpt_edit(_state(_tensor_value(float("nan"))))),
    Mutation("ckpt-inf", EVAL, 3, "invalid", "one weight -inf", _ckpt_edit(_state(_tensor_value(float("-inf"))))),
    Mutation("ckpt-missing-weight", EVAL, 3, "invalid", "a state_dict entry deleted",
             _ckpt_edit(_state(lambda s, r: (lambda ks: s.pop(ks[int(r.integers(len(ks)))]))(
                 sorted(k for k in s if not k.endswith("num_batches_tracked")))))),   # missing counters are allowed
    Mutation("ckpt-extra-weight", EVAL, 1, "invalid", "an unexpected state_dict entry",
             _ckpt_edit(_state(lambda s, r: s.__setitem__("extra.weight", torch.zeros(2))))),
    Mutation("ckpt-wrong-shape", EVAL, 3, "invalid", "a weight of another shape",
             _ckpt_edit(_state(lambda s, r: (lambda k: s.__setitem__(k, torch.zeros(*s[k].shape, 2)))(sorted(s)[int(r.integers(len(s)))])))),
    Mutation("ckpt-weight-not-tensor", EVAL, 1, "invalid", "a weight that is a number",
             _ckpt_edit(_state(lambda s, r: s.__setitem__("what.weight", 3)))),
    Mutation("ckpt-not-dict", EVAL, 1, "invalid", "a list instead of the dict", _ckpt_edit(lambda c, r: [1, 2, 3])),
    Mutation("ckpt-missing-key", EVAL, 2, "invalid", "an official key deleted",
             _ckpt_edit(lambda c, r: (lambda drop: {k: v for k, v in c.items() if k != drop})(
                 ["state_dict", "num_classes", "best_f1"][int(r.integers(3))]))),
    Mutation("ckpt-num-classes", EVAL, 4, "invalid", "num_classes -1, 10^9, '24' or True (and no config)",
             _ckpt_edit(lambda c, r: dict(c, config={}, num_classes=[-1, 10 ** 9, "24", True][int(r.integers(4))]))),
    Mutation("ckpt-width-huge", EVAL, 1, "invalid", "config width 10^6 (a network of 10^13 weights)",
             _ckpt_edit(lambda c, r: dict(c, config={**c["config"], "width": 10 ** 6}))),
    Mutation("ckpt-image-size", EVAL, 1, "invalid", "config image_size 17", _ckpt_edit(lambda c, r: dict(c, config={**c["config"], "image_size": 17}))),
    Mutation("ckpt-config-unknown", EVAL, 1, "invalid", "config with an unknown argument",
             _ckpt_edit(lambda c, r: dict(c, config={**c["config"], "depth": 3}))),
    Mutation("ckpt-config-list", EVAL, 1, "invalid", "config a list", _ckpt_edit(lambda c, r: dict(c, config=[1, 2]))),
    Mutation("ckpt-arch", EVAL, 1, "invalid", "an unknown arch", _ckpt_edit(lambda c, r: dict(c, arch="resnet"))),
    Mutation("ckpt-extra-entry", EVAL, 1, "valid", "an extra top-level entry", _ckpt_edit(lambda c, r: dict(c, note="hello"))),
    Mutation("ckpt-no-counters", EVAL, 1, "valid", "no batch-norm counters (files before PyTorch 0.4.1)",
             _ckpt_edit(_state(lambda s, r: [s.pop(k) for k in [k for k in s if k.endswith("num_batches_tracked")]]))),
    Mutation("ckpt-numpy-f1", EVAL, 1, "valid", "best_f1 a numpy float64 (as official files)",
             _ckpt_edit(lambda c, r: dict(c, best_f1=np.float64(0.5)))),
    Mutation("random-pickle", ("evaluator",), 40, "invalid", "a pickle of random nested Python values", _random_pickle),
    Mutation("pickle-opcode-soup", ("evaluator",), 30, "invalid", "a pickle header followed by random opcodes", _opcode_soup),
    Mutation("pickle-truncated", ("evaluator",), 10, "invalid", "a plain pickle of the checkpoint, cut short", _truncated_pickle),
    Mutation("pickle-unsafe", ("evaluator",), 1, "invalid", "a pickle that asks to call a function", _unsafe_pickle),
]

# ----------------------------------------------------------------------------------------------------------------
# Readers


def _episodes(path, bases):
    with GeNeVAEpisodes(path) as eps:
        eps.background
        for ep in eps: pass


def _turns(path, bases):
    ds = GeNeVATurns(path)
    collate_turns([ds[i] for i in range(len(ds))]); ds.close()


def _embeddings(path, bases):
    emb = TurnEmbeddings(path, bases["iclevr"].path)
    for i, L in enumerate(bases["iclevr"].lengths):
        emb.episode(i)
        for t in range(L): emb.turn(i, t)
    emb.close()


def _turns_with_embeddings(path, bases):
    ds = GeNeVATurns(bases["iclevr"].path, embeddings=TurnEmbeddings(path))
    collate_turns([ds[i] for i in range(len(ds))]); ds.close()


def _detector(path, bases): read_detector_h5(path)
def _evaluator(path, bases): load_evaluator(path)


READERS = {  # base kind -> [(reader name, function, the error it may raise)]
    "codraw": [("GeNeVAEpisodes", _episodes, GeNeVAFormatError), ("GeNeVATurns", _turns, GeNeVAFormatError)],
    "iclevr": [("GeNeVAEpisodes", _episodes, GeNeVAFormatError), ("GeNeVATurns", _turns, GeNeVAFormatError)],
    "embeddings": [("TurnEmbeddings", _embeddings, EmbeddingsFormatError),
                   ("GeNeVATurns+emb", _turns_with_embeddings, EmbeddingsFormatError)],
    "detector": [("read_detector_h5", _detector, GeNeVAFormatError)],
    "evaluator": [("load_evaluator", _evaluator, EvaluatorFormatError)],
    "evaluator-legacy": [("load_evaluator", _evaluator, EvaluatorFormatError)],
}

FAILURES = ("silent-accept", "refused-valid", "unnamed-error", "wrong-error", "hang", "crash", "harness-error")

# ----------------------------------------------------------------------------------------------------------------
# Cases, run in forked children


@dataclass
class Case:
    index: int
    mutation: Mutation
    kind: str
    variant: int
    reader: str

    @property
    def path_name(self) -> str:
        suffix = ".pth" if self.kind.startswith("evaluator") else ".h5"
        return f"{self.index:04d}-{self.kind}-{self.mutation.name}-{self.variant}{suffix}"


def make_cases() -> tuple[list[Case], int]:
    cases, files = [], 0
    for m in MUTATIONS:
        for kind in m.targets:
            for v in range(m.variants * ROUNDS):
                for reader, _, _ in READERS[kind]: cases.append(Case(files, m, kind, v, reader))
                files += 1
    return cases, files


def _file_for(case: Case, bases: dict, work: Path) -> Path:
    "The mutated file of `case`, made once (every reader of a file reads the same bytes)."
    d = work / case.kind; d.mkdir(parents=True, exist_ok=True)
    if case.kind == "codraw" and not (d / "objects.txt").exists(): shutil.copyfile(bases["codraw"].path.parent / "objects.txt", d / "objects.txt")
    path = d / case.path_name
    if not path.exists():
        # seeded by what the case is, not where it sits in the table: adding a mutation changes no other file
        rng = np.random.default_rng([SEED, zlib.crc32(f"{case.mutation.name}/{case.kind}".encode()), case.variant])
        tmp = path.with_name("tmp-" + path.name)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            case.mutation.make(rng, bases[case.kind], tmp)
        tmp.rename(path)
    return path


def _classify(case: Case, path: Path, bases: dict) -> dict:
    fn, error = next((f, e) for name, f, e in READERS[case.kind] if name == case.reader)
    expect = "either" if case.reader in case.mutation.ignored_by else case.mutation.expect
    t = time.perf_counter()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            fn(path, bases)
        outcome = "silent-accept" if expect == "invalid" else "accepted"
        message = ""
    except error as e:
        message = f"{type(e).__name__}: {e}"
        outcome = ("unnamed-error" if path.name not in str(e) else
                   "refused-valid" if expect == "valid" else "refused")
    except Exception as e:   # the failure this test exists to find
        outcome, message = "wrong-error", f"{type(e).__name__}: {e}"
    return {"outcome": outcome, "message": message[:400], "elapsed": time.perf_counter() - t}


def _child(cases: list[Case], start: int, bases: dict, work: Path, fd: int) -> None:
    "Run cases[start:], writing 'B <i>' before and 'R <json>' after each to `fd`; never returns."
    fault = open(work / f"fault-{start}.txt", "w")
    faulthandler.enable(file=fault)                                   # where a segfault happened, for the parent
    try:
        vm = int(next(l for l in open("/proc/self/status") if l.startswith("VmSize")).split()[1]) * 1024
        resource.setrlimit(resource.RLIMIT_AS, (vm + CHILD_MEMORY, resource.RLIM_INFINITY))
    except (OSError, ValueError, StopIteration): pass
    torch.set_num_threads(1)
    out = os.fdopen(fd, "w", buffering=1)
    try:
        for i in range(start, len(cases)):
            case = cases[i]
            out.write(f"B {i}\n")
            path = work / case.kind / case.path_name
            try: path = _file_for(case, bases, work)
            except Exception as e:
                result = {"outcome": "harness-error", "message": f"making the file: {type(e).__name__}: {e}", "elapsed": 0.0}
            else:
                faulthandler.dump_traceback_later(CASE_LIMIT_S - 5, file=fault)   # where a hang is, for the parent
                result = _classify(case, path, bases)
                faulthandler.cancel_dump_traceback_later()
            out.write("R " + json.dumps({"i": i, **result}) + "\n")
            if i + 1 == len(cases) or cases[i + 1].index != case.index: path.unlink(missing_ok=True)
        out.flush()
    finally:
        os._exit(0)


def run_cases(cases: list[Case], bases: dict, work: Path) -> list[dict]:
    "Every case's result; a child that dies or overruns `CASE_LIMIT_S` is replaced and the case marked crash or hang."
    results: list[dict | None] = [None] * len(cases)
    start = 0
    while start < len(cases):
        r, w = os.pipe()
        pid = os.fork()
        if pid == 0:
            os.close(r); _child(cases, start, bases, work, w)
        os.close(w)
        buf, current, began, hang = b"", None, time.monotonic(), False
        while True:
            ready, _, _ = select.select([r], [], [], 1.0)
            if ready:
                chunk = os.read(r, 65536)
                if not chunk: break
                buf += chunk
                *lines, buf = buf.split(b"\n")
                for line in lines:
                    tag, _, rest = line.decode().partition(" ")
                    if tag == "B": current, began = int(rest), time.monotonic()
                    elif tag == "R":
                        res = json.loads(rest); results[res.pop("i")] = res; current = None
            if current is not None and time.monotonic() - began > CASE_LIMIT_S:
                os.kill(pid, signal.SIGKILL); hang = True; break
        os.close(r)
        _, status = os.waitpid(pid, 0)
        fault = work / f"fault-{start}.txt"
        trace = fault.read_text() if fault.exists() else ""
        if current is None:                    # finished (or died between two cases)
            pending = [i for i in range(start, len(cases)) if results[i] is None]
            if not pending: break
            current = pending[0]
        frames = re.findall(r'File "([^"]+)", line (\d+) in (\w+)', trace)   # innermost first
        in_hdf5 = bool(frames) and "/h5py/" in frames[0][0]
        crash = ("hdf5-hang" if in_hdf5 else "hang") if hang else ("hdf5-crash" if in_hdf5 else "crash")
        where = " at " + " < ".join(f"{Path(f).name}:{n} {fn}" for f, n, fn in frames[:4]) if frames else ""
        results[current] = {"outcome": crash, "elapsed": time.monotonic() - began,
                            "message": f"killed after {CASE_LIMIT_S} s{where}" if hang else f"the child died (wait status {status}){where}"}
        start = current + 1
    return results


def summarise(cases: list[Case], results: list[dict], files: int, wall: float) -> tuple[str, list[str]]:
    from collections import Counter
    by_reader, by_mutation, failures, lib_crashes = {}, {}, [], []
    for c, r in zip(cases, results):
        by_reader.setdefault(c.reader, Counter())[r["outcome"]] += 1
        m = c.mutation
        label = f"{m.name} ({m.expect}" + (f"; either for {', '.join(m.ignored_by)})" if m.ignored_by else ")")
        by_mutation.setdefault(label, Counter())[r["outcome"]] += 1
        if r["outcome"] in ("hdf5-crash", "hdf5-hang"):
            lib_crashes.append(f"{c.reader} on {c.path_name}: {c.mutation.what}: {r['message']}")
        if r["outcome"] in FAILURES:
            failures.append(f"{r['outcome']}: {c.reader} on {c.path_name}: {c.mutation.what}: {r['message']}")
    classes = ["refused", "accepted", "hdf5-crash", "hdf5-hang", *FAILURES]
    lines = [f"{files} files, {len(cases)} reads in {wall:.1f} s (slowest read {max(r['elapsed'] for r in results):.2f} s)",
             "", f"{'reader':<20}" + "".join(f"{k:>15}" for k in classes)]
    for name, cnt in sorted(by_reader.items()):
        lines.append(f"{name:<20}" + "".join(f"{cnt.get(k, 0):>15}" for k in classes))
    total = sum(by_reader.values(), Counter())
    lines.append(f"{'all':<20}" + "".join(f"{total.get(k, 0):>15}" for k in classes))
    lines += ["", "per mutation: " + ", ".join(classes), ""]
    for name, cnt in by_mutation.items():
        lines.append(f"  {name:<54}" + " ".join(f"{k}={v}" for k, v in sorted(cnt.items())))
    if lib_crashes:
        lines += ["", f"segfaults or endless loops inside libhdf5 (h5py {h5py.__version__}, HDF5 {h5py.version.hdf5_version}) "
                      f"on damaged bytes, which no Python reader can refuse (tolerated, listed):", *lib_crashes]
    return "\n".join(lines), failures


def test_mutation_table_is_documented():
    names = [m.name for m in MUTATIONS]
    assert len(names) == len(set(names)), "mutation names must be unique"
    for m in MUTATIONS:
        assert m.expect in ("invalid", "valid", "either") and m.what and m.variants >= 1, m.name
        assert set(m.targets) <= set(READERS), m.name


def test_fuzz_readers(tmp_path):
    t0 = time.perf_counter()
    bases = make_bases(tmp_path / "base")
    for kind, base in bases.items():       # the bases themselves are read by every reader
        for reader, fn, _ in READERS[kind]: fn(base.path, bases)
    cases, files = make_cases()
    assert files >= 1000, f"only {files} malformed files"
    (tmp_path / "work").mkdir()
    results = run_cases(cases, bases, tmp_path / "work")
    report, failures = summarise(cases, results, files, time.perf_counter() - t0)
    print("\n" + report)
    if failures: print("\nfailures:\n" + "\n".join(failures[:200]))
    assert not failures, f"{len(failures)} bad outcomes:\n" + "\n".join(failures[:60]) + "\n\n" + report
