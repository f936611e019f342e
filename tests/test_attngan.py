"""AttnGAN end to end: the papermill notebooks (DAMSM pre-training, the GAN on 2 processes, resume), exact resume,
one optimisation step that lowers each player's loss on a fixed batch, and bad input named before any work."""
import json

import pytest
import torch

from conftest import ROOT
from test_notebooks import papermill


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    "A synthetic CUB-layout folder of 60 pictures."
    from lib.synth.captions import make_captions_dataset
    return make_captions_dataset(tmp_path_factory.mktemp("data") / "birds", n_images=60, seed=0)


def test_notebooks_pretrain_then_train_on_two_processes_and_resume(tmp_path, data):
    out = tmp_path / "runs"
    papermill("pretrain_damsm.ipynb", tmp_path / "d.ipynb", run_name="pm", out_root=out, preset="smoke", dataset=data)
    damsm = out / "pm-damsm"
    assert {"text_encoder.pth", "image_encoder.pth", "damsm.json"} <= {p.name for p in damsm.iterdir()}
    common = dict(run_name="gan", out_root=out, preset="smoke", dataset=data, damsm_dir=damsm, num_processes=2)
    papermill("train_attngan.ipynb", tmp_path / "a.ipynb", steps=4, **common)
    assert "on 2 process(es)" in (out / "gan" / "log.txt").read_text()
    papermill("train_attngan.ipynb", tmp_path / "b.ipynb", steps=6, **common)   # the same run, longer: resumes
    assert "resumed from" in (out / "gan" / "log.txt").read_text()
    evals = [json.loads(l) for l in (out / "gan" / "metrics.jsonl").read_text().splitlines() if '"eval"' in l]
    rp, fd = ([e for e in evals if e["metric"] == m] for m in ("rprecision", "fid"))
    assert [e["step"] for e in rp] == [4, 6] and all({"R", "real_R", "blind_R"} <= set(e) for e in rp)
    assert [e["step"] for e in fd] == [4, 6] and all({"FD_damsm", "real_FD_damsm", "blind_FD_damsm"} <= set(e) for e in fd)
    assert (out / "gan" / "samples" / "attention.png").exists()


def test_resume_equals_uninterrupted(tmp_path, data):
    from lib.systems.attngan import pretrain_damsm, train_attngan
    common = dict(preset="smoke", data_dir=str(data), out_root=tmp_path, progress=False, eval_images=10)
    damsm = pretrain_damsm(run_name="d", **common)
    straight = train_attngan(run_name="a", damsm_dir=str(damsm), steps=4, **common)
    train_attngan(run_name="b", damsm_dir=str(damsm), steps=2, **common)
    resumed = train_attngan(run_name="b", damsm_dir=str(damsm), steps=4, **common)
    for (k, x), (_, y) in zip(straight.system.G.state_dict().items(), resumed.system.G.state_dict().items()):
        assert torch.equal(x, y), k


def test_one_step_lowers_each_players_loss_on_a_fixed_batch(data):
    from lib.data.captions import CaptionImages
    from lib.models.attngan import build_damsm, build_gan
    from lib.systems.attngan import AttnGANSystem
    from lib.train import Nets, Phase, StepContext
    torch.manual_seed(0)
    items = CaptionImages(data, "train", image_size=64)
    batch = torch.utils.data.default_collate([items[i] for i in range(8)])
    text, image = build_damsm("cpu-demo", len(items.data.ixtoword))
    G, Ds = build_gan("cpu-demo")
    system = AttnGANSystem(G, Ds, text.eval(), image.eval(), z_dim=32)
    opts = system.optimizers()
    nets = Nets(**system.nets)
    for phase in (Phase("D", "D"), Phase("G", "G")):
        ctx = lambda: StepContext(step=0, phase=phase, seed=0, global_batch=8, offset=0, micro_batch=8, device=torch.device("cpu"))
        torch.manual_seed(1); before, _ = system.loss(phase, batch, nets, ctx())   # the same CA noise both times
        opts[phase.net].zero_grad(); before.backward(); opts[phase.net].step()
        torch.manual_seed(1); after, _ = system.loss(phase, batch, nets, ctx())
        assert after.item() < before.item(), (phase.name, before.item(), after.item())


def test_bad_input_is_named_before_any_work(tmp_path):
    from lib.core import ConfigError
    from lib.systems.attngan import attngan_params, train_attngan
    with pytest.raises(ConfigError, match="model_preset") as e:
        attngan_params("cpu-demo", model_preset="paper-cats", lr_g=-1)
    assert "lr_g = -1" in str(e.value)
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="no train/filenames.pickle"):
        train_attngan("smoke", data_dir=str(tmp_path / "empty"), out_root=tmp_path, run_name="x", progress=False)
    assert not (tmp_path / "x").exists()
