"""Bad settings fail at once, all named in one error: every value that once ended in a ZeroDivisionError mid-run, a run
that trained nothing, a setting silently ignored, NaN weights or a crash after the whole run is refused where the
parameters are made — `TrainConfig`, the GeNeVA systems' `geneva_params` and hyperparameters, TIRG pre-training, the
evaluator's training and toy2d — from Python and from the command line (exit status 2, no traceback, nothing
written). Every preset of every system passes its rules."""
import subprocess
import sys

import pytest

from conftest import ROOT
from lib.core import ConfigError, MissingFileError, check_params
from lib.train import TRAIN_RULES, TrainConfig

# The values measured to fail late or not at all before the checks, as (key, value).
ENGINE_BAD = [("batch_size", 0), ("accum", 0), ("ckpt_every", 0), ("log_every", 0), ("steps", 0), ("steps", -5),
              ("keep_ckpts", 0), ("ema_decay", float("nan")), ("precision", "fp16"), ("seed", -1), ("steps", 2.5),
              ("progress", "yes"), ("time_limit_s", float("inf"))]


def names(err: ConfigError) -> list[str]:
    return [name for name, _, _ in err.problems]


@pytest.mark.parametrize("key,value", ENGINE_BAD, ids=[f"{k}={v}" for k, v in ENGINE_BAD])
def test_train_config_refuses(key, value):
    with pytest.raises(ConfigError) as info: TrainConfig(**{key: value})
    assert names(info.value) == [key] and f"{key} = {value!r}: expected" in str(info.value)


def test_train_config_lists_every_bad_value_and_keeps_good_ones():
    with pytest.raises(ConfigError) as info:
        TrainConfig(steps=0, batch_size=0, accum=0, log_every=0, ckpt_every=0, keep_ckpts=0)
    assert names(info.value) == ["steps", "batch_size", "accum", "log_every", "ckpt_every", "keep_ckpts"]
    assert str(info.value).startswith("TrainConfig: 6 bad value(s):\n  steps = 0: expected an integer >= 1")
    TrainConfig()                                           # the defaults pass
    TrainConfig(steps=None, time_limit_s=0, grad_clip=1.0)  # a time limit instead of steps (0: one step)
    with pytest.raises(ConfigError, match="give steps, time_limit_s or both"): TrainConfig(steps=None)
    assert set(TRAIN_RULES) == set(TrainConfig.__dataclass_fields__)


def test_missing_resume_path_is_a_file_not_found_naming_it(tmp_path):
    missing = tmp_path / "runs" / "x" / "checkpoints" / "step-00000100.pt"
    with pytest.raises(FileNotFoundError) as info: TrainConfig(resume=str(missing))
    assert isinstance(info.value, MissingFileError) and str(missing) in str(info.value) and "no such file" in str(info.value)
    missing.parent.mkdir(parents=True); missing.write_bytes(b"")
    assert TrainConfig(resume=str(missing)).resume == str(missing)   # there now (whether it loads is the engine's check)


def test_geneva_params_and_system_refuse():
    import torch
    from lib.systems.geneva import (GENEVA_MODELS, GENEVA_TRAIN_DEFAULTS, GENEVA_TRAIN_PRESETS, GENEVA_TRAIN_RULES,
                                    GeNeVASystem, geneva_params)
    assert set(GENEVA_TRAIN_DEFAULTS) <= set(GENEVA_TRAIN_RULES)
    for preset in GENEVA_TRAIN_PRESETS:
        for model in GENEVA_MODELS: geneva_params(preset, {"model": model})
    bad = dict(batch_size=0, accum=0, ckpt_every=0, log_every=0, steps=0, keep_ckpts=0, input_noise=float("nan"),
               truncation=-1, lr_g=float("inf"), r1_every=0, wrong_weight=2.0, dataset="coco", warm_start_steps=-1)
    with pytest.raises(ConfigError) as info: geneva_params("smoke", bad)
    assert sorted(names(info.value)) == sorted(bad), str(info.value)
    with pytest.raises(ConfigError, match="model_preset = 'huge'"): geneva_params("smoke", {"model_preset": "huge"})
    with pytest.raises(ConfigError, match="model_overrides"): geneva_params("smoke", {"model": "geneva_gan", "model_overrides": {"use_latte": False}})
    G, D = torch.nn.Linear(2, 2), torch.nn.Linear(2, 2); G.z_dim = 4
    with pytest.raises(ConfigError, match="input_noise = nan"): GeNeVASystem(G, D, input_noise=float("nan"))
    with pytest.raises(ConfigError, match="truncation = -1"): GeNeVASystem(G, D, truncation=-1)


def test_lattegan_command_line_fails_before_doing_anything(tmp_path):
    "The measured cases of the LatteGAN command: exit status 2 with the list, no traceback, no run folder, no data read."
    p = subprocess.run([sys.executable, "-m", "lib.systems.lattegan", "--preset", "smoke", "--out_root", str(tmp_path),
                        "--data_dir", str(tmp_path / "no-data"), "--input_noise", "nan", "--truncation", "-1",
                        "--batch_size", "0", "--keep_ckpts", "0", "--resume", str(tmp_path / "gone.pt")],
                       cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert p.returncode == 2, (p.stdout[-2000:], p.stderr[-2000:])
    assert "Traceback" not in p.stderr, p.stderr[-3000:]
    for line in ("batch_size = 0: expected an integer >= 1", "keep_ckpts = 0", "input_noise = nan", "truncation = -1",
                 f"resume = '{tmp_path / 'gone.pt'}'"):
        assert line in p.stderr, (line, p.stderr)
    assert list(tmp_path.iterdir()) == []


def test_tirg_and_evaluator_check_their_arguments_first(tmp_path):
    "Before any file is read: the dataset folder does not even exist."
    from lib.systems.geneva_evaluator import train_evaluator
    from lib.systems.tirg import TIRG_PRESETS, TIRG_RULES, pretrain_tirg
    for name, preset in TIRG_PRESETS.items(): check_params(preset, TIRG_RULES, name)
    with pytest.raises(ConfigError) as info:
        pretrain_tirg(tmp_path / "none", "iclevr", steps=0, batch_size=0, lr=float("nan"), text_layers=-1, max_len=0)
    assert names(info.value) == ["steps", "batch_size", "lr", "max_len", "text_layers"]
    with pytest.raises(ConfigError) as info:
        train_evaluator(tmp_path / "none", "clevr", epochs=0, lr_halve_every=0, target_scale=0, max_train=0)
    assert names(info.value) == ["dataset", "epochs", "lr_halve_every", "target_scale", "max_train"]
    assert not (tmp_path / "none").exists()


def test_toy2d_params_and_command_line(tmp_path):
    from lib.systems.toy2d import TOY2D_DEFAULTS, TOY2D_PRESETS, TOY2D_RULES, Toy2DSystem, toy2d_params
    assert set(TOY2D_DEFAULTS) <= set(TOY2D_RULES)
    for preset in TOY2D_PRESETS: toy2d_params(preset)
    with pytest.raises(ConfigError, match="n_data = 10: expected at least one batch"): toy2d_params("smoke", n_data=10)
    with pytest.raises(ConfigError, match="r1_every = 0"): Toy2DSystem(r1_every=0)
    p = subprocess.run([sys.executable, "-m", "lib.systems.toy2d", "--preset", "smoke", "--out_root", str(tmp_path),
                        "--steps", "-5", "--accum", "0", "--log_every", "0", "--ckpt_every", "0"],
                       cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert p.returncode == 2 and "the toy2d parameters: 4 bad value(s):" in p.stderr, p.stderr[-2000:]
    assert list(tmp_path.iterdir()) == []
