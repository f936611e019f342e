"""No code from data: a pickle whose unpickling would run code (here: create a marker file) is planted on every
path drawlab loads weights from — the engine's resume ("latest" and an explicit path), `latest_checkpoint`, the
draw app (a run folder and a checkpoint file), the evaluator, a text encoder folder, pretrained weights and
official LatteGAN snapshots — and each must refuse it with an error naming the file, without running it.
Also: older checkpoints are refused with the command that converts them, and the conversion works."""
import builtins
import pickle
import subprocess
import sys

import numpy as np
import pytest
import torch

from conftest import ROOT

from lib.train import CheckpointError, convert_checkpoint_file, latest_checkpoint, load_checkpoint


class Payload:
    "Unpickling this creates the file `marker`: what a hostile weight file would do."
    def __init__(self, marker): self.marker = str(marker)
    def __reduce__(self): return (builtins.open, (self.marker, "w"))


@pytest.fixture
def plant(tmp_path):
    "plant(path, obj=None, raw=False): write a hostile file at `path` (torch.save, or a plain pickle); returns the marker."
    marker = tmp_path / "payload-ran"
    def write(path, obj=None, raw=False):
        path.parent.mkdir(parents=True, exist_ok=True)
        obj = {"version": 3, "step": 5, "payload": Payload(marker)} if obj is None else obj
        if raw: path.write_bytes(pickle.dumps(obj))
        else: torch.save(obj, path)
        return path
    write.marker = marker
    yield write
    assert not marker.exists(), "a planted pickle ran"


def refused(fn, *names, exc=Exception):
    "`fn()` raises; the message holds each of `names`."
    with pytest.raises(exc) as info: fn()
    for name in names: assert name in str(info.value), (name, str(info.value))
    return str(info.value)


@pytest.mark.parametrize("raw", [False, True], ids=["torch.save", "plain-pickle"])
def test_load_checkpoint_and_latest(tmp_path, plant, raw):
    path = plant(tmp_path / "ckpts" / "step-00000005.pt", raw=raw)
    msg = refused(lambda: load_checkpoint(path), "step-00000005.pt", "refused", exc=CheckpointError)
    assert "could run code" in msg
    warnings = []
    assert latest_checkpoint(tmp_path / "ckpts", warn=warnings.append) is None
    assert "step-00000005.pt" in warnings[0] and "refused" in warnings[0]


def toy(tmp_path, **kw):
    from lib.systems.toy2d import train_toy2d
    return train_toy2d("smoke", out_root=tmp_path, run_name="toy", steps=2, eval_every=0, ckpt_every=1,
                       progress=False, **kw)


def test_engine_resume_latest_and_explicit(tmp_path, plant):
    evil = plant(tmp_path / "toy" / "checkpoints" / "step-00000009.pt")
    engine = toy(tmp_path)                                   # resume="latest": the hostile newest one is skipped
    log = (tmp_path / "toy" / "log.txt").read_text()
    assert "step-00000009.pt" in log and "refused" in log and "resumed from" not in log
    assert engine.step == 2
    evil.unlink()
    other = plant(tmp_path / "elsewhere" / "mine.pt")
    refused(lambda: toy(tmp_path, resume=str(other)), "mine.pt", "refused", exc=CheckpointError)


def test_draw_app_folder_and_file(tmp_path, plant):
    from lib.apps.draw import DrawSession
    evil = plant(tmp_path / "run" / "checkpoints" / "step-00000005.pt")
    refused(lambda: DrawSession.from_run(evil), "step-00000005.pt", "refused", exc=CheckpointError)
    refused(lambda: DrawSession.from_run(tmp_path / "run"), "no checkpoint to draw with", exc=FileNotFoundError)


# The evaluator and official-snapshot loaders read through `lib.core.safe_torch_load`, which names the file.


def test_evaluator(tmp_path, plant):
    from lib.metrics.geneva import load_evaluator
    path = plant(tmp_path / "iclevr_inception_best_checkpoint.pth", {"state_dict": Payload(plant.marker)})
    refused(lambda: load_evaluator(path), "iclevr_inception_best_checkpoint.pth")


def test_pretrained_weights(tmp_path, plant):
    from lib.nn.pretrained import read_state_dict
    path = plant(tmp_path / "resnet18.pth", {"conv1.weight": Payload(plant.marker)})
    refused(lambda: read_state_dict(path, "ResNet-18"), "resnet18.pth", exc=ValueError)


def test_official_lattegan_snapshot(tmp_path, plant):
    from lib.models.lattegan import load_official
    path = plant(tmp_path / "exp170.pth", {"eval_generator": Payload(plant.marker)})
    refused(lambda: load_official(path), "exp170.pth")


def test_text_encoder_folder(tmp_path, plant):
    "A TIRG / text-encoder folder whose weights are a pickle (`pytorch_model.bin`) rather than safetensors."
    from transformers import BertConfig, BertTokenizer
    from lib.nn.text import load_text_encoder
    folder = tmp_path / "tirg-encoder"; folder.mkdir()
    (folder / "vocab.txt").write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "a", "red", "cube"]) + "\n")
    BertTokenizer(str(folder / "vocab.txt")).save_pretrained(folder)
    BertConfig(vocab_size=8, hidden_size=8, num_hidden_layers=1, num_attention_heads=2, intermediate_size=16).save_pretrained(folder)
    plant(folder / "pytorch_model.bin", {"embeddings.word_embeddings.weight": Payload(plant.marker)})
    from lib.core import UnsafeFileError
    refused(lambda: load_text_encoder(str(folder)), "pytorch_model.bin", "refused", exc=UnsafeFileError)


def version2_checkpoint(path):
    "A checkpoint as drawlab wrote them before RNG states were tensors: numpy's state pickled as an array."
    import random
    rng = [{"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}]
    torch.save({"version": 2, "step": 4, "nets": {"G": {"w": torch.ones(2)}}, "ema": None, "optimizers": {},
                "schedulers": {}, "config": {}, "params": {"seed": 0}, "world_size": 1, "rng": rng}, path)
    return path


def test_old_checkpoint_names_the_converter_and_converts(tmp_path, plant):
    path = version2_checkpoint(tmp_path / "step-00000004.pt")
    refused(lambda: load_checkpoint(path), "step-00000004.pt", "python -m lib.train convert", exc=CheckpointError)
    p = subprocess.run([sys.executable, "-m", "lib.train", "convert", str(path)], cwd=ROOT, capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    ckpt = load_checkpoint(path)
    assert ckpt["step"] == 4 and torch.equal(ckpt["nets"]["G"]["w"], torch.ones(2))
    assert (tmp_path / "step-00000004.pt.orig").exists()
    # a hostile file is not converted without --trust, and the converter does not run it
    evil = plant(tmp_path / "evil.pt", {"version": 2, "step": 1, "x": Payload(plant.marker)})
    p = subprocess.run([sys.executable, "-m", "lib.train", "convert", str(evil)], cwd=ROOT, capture_output=True, text=True)
    assert p.returncode != 0 and "--trust" in p.stderr


# Pickled dataset files (AttnGAN's filenames.pickle, captions.pickle, class_info.pickle) go through
# `lib.core.safe_pickle_load`: plain containers and values only, nothing of the file runs.

class ShellPayload:
    "Unpickling this runs a shell command that creates `marker`."
    def __init__(self, marker): self.marker = str(marker)
    def __reduce__(self):
        import os
        return (os.system, (f"touch {self.marker}",))


CAPTIONS = [[[1, 2, 3, 0], [2, 3]], [[3, 1]], {0: "<end>", 1: "a", 2: "small", 3: "bird"},
            {"<end>": 0, "a": 1, "small": 2, "bird": 3}]        # [train_caps, test_caps, ixtoword, wordtoix]
FILENAMES = ["001.Black_footed_Albatross/Black_Footed_Albatross_0046_18", "002.Laysan_Albatross/Laysan_Albatross_0002_1027"]
CLASS_INFO = [1, 1, 2, 2, 200]


@pytest.mark.parametrize("protocol", [2, pickle.HIGHEST_PROTOCOL])
def test_attngan_shaped_pickles_load(tmp_path, protocol):
    from lib.core import safe_pickle_load
    for name, obj in (("captions", CAPTIONS), ("filenames", FILENAMES), ("class_info", CLASS_INFO),
                      ("mixed", {"ids": (1, 2), "set": {3}, "bytes": b"\xff\x00", "float": 0.5, "none": None})):
        path = tmp_path / f"{name}.pickle"; path.write_bytes(pickle.dumps(obj, protocol))
        assert safe_pickle_load(path) == obj
        assert safe_pickle_load(path, encoding="latin1") == obj
    ids = tmp_path / "class_ids.pickle"; ids.write_bytes(pickle.dumps(np.array(CLASS_INFO), protocol))
    refused(lambda: safe_pickle_load(ids), "class_ids.pickle", "numpy", "numpy_arrays=True")
    assert (safe_pickle_load(ids, numpy_arrays=True) == np.array(CLASS_INFO)).all()


def test_python2_pickle_needs_latin1(tmp_path):
    "A Python 2 protocol-2 pickle (opcodes `U`: byte strings) as AttnGAN's files were written: ['bird', 'caf\\xe9'], and a set."
    from lib.core import safe_pickle_load
    path = tmp_path / "filenames.pickle"
    path.write_bytes(b"\x80\x02]q\x00(U\x04birdq\x01U\x04caf\xe9q\x02c__builtin__\nset\nq\x03]q\x04K\x01a\x85Rq\x05e.")
    assert safe_pickle_load(path, encoding="latin1") == ["bird", "café", {1}]
    refused(lambda: safe_pickle_load(path), "filenames.pickle", "encoding='latin1'", exc=pickle.UnpicklingError)


@pytest.mark.parametrize("protocol", [0, 2, pickle.HIGHEST_PROTOCOL])
@pytest.mark.parametrize("payload", ["os.system", "builtins.open"])
def test_hostile_pickle_runs_nothing(tmp_path, protocol, payload):
    from lib.core import UnsafeFileError, safe_pickle_load
    marker = tmp_path / "payload-ran"
    evil = ShellPayload(marker) if payload == "os.system" else Payload(marker)
    path = tmp_path / "captions.pickle"
    path.write_bytes(pickle.dumps([CAPTIONS[0], {"x": evil}], protocol))
    msg = refused(lambda: safe_pickle_load(path, "caption file", encoding="latin1"), "captions.pickle",
                  "refused as a caption file", exc=UnsafeFileError)
    assert ("system" if payload == "os.system" else "open") in msg, msg   # posix.system, builtins.open or io.open
    assert not marker.exists(), "the pickle ran"


def test_hand_made_exploits_run_nothing(tmp_path):
    "Pickles written opcode by opcode: a protocol-0 GLOBAL + REDUCE, an INST, a BUILD on an allowed object, a codec call."
    from lib.core import UnsafeFileError, safe_pickle_load
    marker = tmp_path / "ran"
    cases = {
        "reduce": f"cos\nsystem\n(S'touch {marker}'\ntR.".encode(),
        "inst": f"(S'touch {marker}'\nios\nsystem\n.".encode(),
        "stack_global": b"\x80\x04\x95\x00\x00\x00\x00\x00\x00\x00\x00\x8c\x02os\x8c\x06system\x93\x8c\x04true\x85R.",
        "codec": b"\x80\x02c_codecs\nencode\nX\x02\x00\x00\x00eJX\x04\x00\x00\x00zlib\x86R.",
    }
    for name, data in cases.items():
        path = tmp_path / f"{name}.pickle"; path.write_bytes(data)
        with pytest.raises(UnsafeFileError) as info: safe_pickle_load(path)
        assert f"{name}.pickle" in str(info.value) and info.value.names, str(info.value)
    assert not marker.exists()


@pytest.mark.parametrize("cut", ["truncated", "garbage", "empty"])
def test_corrupt_pickle_names_the_file(tmp_path, cut):
    from lib.core import safe_pickle_load
    data = pickle.dumps(CAPTIONS, 2)
    data = {"truncated": data[: len(data) // 2], "garbage": b"not a pickle at all", "empty": b""}[cut]
    path = tmp_path / "captions.pickle"; path.write_bytes(data)
    refused(lambda: safe_pickle_load(path), "captions.pickle", "cannot be read", exc=pickle.UnpicklingError)
