"""LatteGAN and GeNeVA-GAN networks with the engine's losses: one optimisation step lowers each player's loss on a
fixed batch; configs and state dicts round-trip through files."""
import json

import pytest
import torch
import torch.nn.functional as F

from lib.core import atomic_torch_save
from lib.losses import hinge_d_loss, hinge_g_loss, kl_divergence, r1_penalty
from lib.models.lattegan import LatteDiscriminator, LatteGenerator, build
from lib.models.geneva_gan import GeNeVADiscriminator, GeNeVAGenerator, build_geneva_gan

TEXT_DIM, B = 16, 4


def lattegan_batch(seed=0, S=64, L=5):
    g = torch.Generator().manual_seed(seed)
    lengths = torch.tensor([5, 3, 2, 4])
    return dict(z=torch.randn(B, 100, generator=g), sentence=torch.randn(B, TEXT_DIM, generator=g),
                words=torch.randn(B, L, TEXT_DIM, generator=g), word_mask=torch.arange(L)[None] >= lengths[:, None],
                source=torch.rand(B, 3, S, S, generator=g) * 2 - 1, target=torch.rand(B, 3, S, S, generator=g) * 2 - 1,
                added=(torch.rand(B, 24, generator=g) < 0.1).float())


def generate(G, b, seed=1):
    torch.manual_seed(seed)  # the same conditioning-augmentation noise before and after a step
    return G(b["z"], b["sentence"], b["words"], b["word_mask"], b["source"])


def d_loss(G, D, b, r1_gamma=10.0):
    "LatteGAN's discriminator loss: global hinge (real vs fake and wrong pairs), per-pixel hinge, 10·aux BCE, R1."
    with torch.no_grad(): fake = generate(G, b).image
    target = b["target"].detach().requires_grad_(True)
    real = D(target, b["source"], b["sentence"])
    wrong = D(target.roll(1, 0), b["source"].roll(1, 0), b["sentence"])  # image pairs shifted against the text
    fk = D(fake, b["source"], b["sentence"])
    loss = hinge_d_loss(real.global_logit, torch.cat([fk.global_logit, wrong.global_logit]))  # 0.5 fake + 0.5 wrong
    loss = loss + hinge_d_loss(real.pixel_logits, fk.pixel_logits)
    loss = loss + 10 * F.binary_cross_entropy_with_logits(real.aux_logits, b["added"])
    return loss + r1_gamma / 2 * r1_penalty(real.global_logit, target)


def g_loss(G, D, b):
    "LatteGAN's generator loss: -D_global - D_pixel + 10·aux BCE + KL."
    out = generate(G, b)
    fk = D(out.image, b["source"], b["sentence"])
    return (hinge_g_loss(fk.global_logit) + hinge_g_loss(fk.pixel_logits)
            + 10 * F.binary_cross_entropy_with_logits(fk.aux_logits, b["added"])
            + kl_divergence(out.mu, out.logvar, reduction="mean"))


def one_step(net, loss_fn, lr):
    opt = torch.optim.Adam([p for p in net.parameters() if p.requires_grad], lr=lr, betas=(0.0, 0.9))
    before = loss_fn()
    opt.zero_grad(); before.backward(); opt.step()
    after = loss_fn()  # with gradients enabled: R1 differentiates D
    return before.item(), after.item()


def assert_same_outputs(G, D, G2, D2, b):
    "Two copies of LatteGAN's networks draw the same image and judge it the same, in eval mode."
    for net in (G, G2, D, D2): net.eval()
    with torch.no_grad():
        x1 = G(b["z"], b["sentence"], b["words"], b["word_mask"], b["source"], sample=False).image
        x2 = G2(b["z"], b["sentence"], b["words"], b["word_mask"], b["source"], sample=False).image
        assert torch.equal(x1, x2)
        d1, d2 = D(x1, b["source"], b["sentence"]), D2(x2, b["source"], b["sentence"])
        for f in ("global_logit", "pixel_logits", "aux_logits"): assert torch.equal(getattr(d1, f), getattr(d2, f))


def test_lattegan_one_step_lowers_both_losses():
    torch.manual_seed(0)
    G, D = build("cpu-demo", 24, TEXT_DIM)
    b = lattegan_batch()
    G.requires_grad_(False); D.requires_grad_(True)
    before, after = one_step(D, lambda: d_loss(G, D, b), lr=4e-4)
    assert after < before, (before, after)
    G.requires_grad_(True); D.requires_grad_(False)
    before, after = one_step(G, lambda: g_loss(G, D, b), lr=1e-4)
    assert after < before, (before, after)


def test_geneva_gan_one_step_lowers_both_losses():
    torch.manual_seed(0)
    G, D = build_geneva_gan("cpu-demo", 24, 30)
    g = torch.Generator().manual_seed(0)
    lengths = torch.tensor([[4, 2], [3, 3]])
    ids = torch.randint(2, 30, (2, 2, 4), generator=g) * (torch.arange(4) < lengths[..., None])
    target, source = torch.rand(4, 3, 64, 64, generator=g) * 2 - 1, torch.rand(4, 3, 64, 64, generator=g) * 2 - 1
    z, added = torch.randn(4, 100, generator=g), (torch.rand(4, 24, generator=g) < 0.1).float()

    def fake_images():
        with torch.no_grad(): cond = D.text_encoder(ids, lengths).flatten(0, 1)
        torch.manual_seed(1)
        return G(z, cond, source), cond

    def dl():
        cond = D.text_encoder(ids, lengths).flatten(0, 1)  # the discriminator's loss trains the dialogue encoder
        with torch.no_grad(): fake = fake_images()[0].image
        real, fk = D(target, source, cond), D(fake, source, cond)
        wrong = D(target.roll(1, 0), source.roll(1, 0), cond)
        return (hinge_d_loss(real.global_logit, torch.cat([fk.global_logit, wrong.global_logit]))
                + 10 * F.binary_cross_entropy_with_logits(real.aux_logits, added))

    def gl():
        out, cond = fake_images()
        fk = D(out.image, source, cond)
        return (hinge_g_loss(fk.global_logit) + 10 * F.binary_cross_entropy_with_logits(fk.aux_logits, added)
                + kl_divergence(out.mu, out.logvar, reduction="mean"))

    G.requires_grad_(False); D.requires_grad_(True)
    before, after = one_step(D, dl, lr=4e-4)
    assert after < before, (before, after)
    G.requires_grad_(True); D.requires_grad_(False)
    before, after = one_step(G, gl, lr=1e-4)
    assert after < before, (before, after)


@pytest.mark.parametrize("kw", [{}, dict(use_rfe=False, d_use_local=False), dict(use_latte=False, d_use_text=False)])
def test_lattegan_config_json_round_trip(kw, tmp_path):
    G, D = build("cpu-demo", 58, TEXT_DIM, ortho_init=False, d_ortho_init=False, **kw)
    path = tmp_path / "config.json"
    path.write_text(json.dumps({"G": G.config, "D": D.config}))
    cfg = json.loads(path.read_text())
    G2, D2 = LatteGenerator.from_config(cfg["G"]), LatteDiscriminator.from_config(cfg["D"])
    assert G2.config == G.config and D2.config == D.config
    for a, b in ((G, G2), (D, D2)):
        assert {k: v.shape for k, v in a.state_dict().items()} == {k: v.shape for k, v in b.state_dict().items()}


def test_lattegan_state_dict_file_round_trip(tmp_path):
    torch.manual_seed(0)
    G, D = build("cpu-demo", 24, TEXT_DIM)
    b = lattegan_batch()
    generate(G, b); D(b["target"], b["source"], b["sentence"])  # a training-mode pass moves the spectral-norm vectors
    atomic_torch_save({"G": G.state_dict(), "D": D.state_dict(), "G_config": G.config, "D_config": D.config},
                      tmp_path / "ckpt.pt")
    ckpt = torch.load(tmp_path / "ckpt.pt", weights_only=True)
    G2, D2 = LatteGenerator.from_config(ckpt["G_config"]), LatteDiscriminator.from_config(ckpt["D_config"])
    G2.load_state_dict(ckpt["G"]); D2.load_state_dict(ckpt["D"])
    assert_same_outputs(G, D, G2, D2, b)


def test_geneva_gan_state_dict_file_round_trip(tmp_path):
    torch.manual_seed(0)
    G, D = build_geneva_gan("cpu-demo", 58, 30, word_vectors=torch.randn(30, 12))
    atomic_torch_save({"G": G.state_dict(), "D": D.state_dict(), "G_config": G.config, "D_config": D.config},
                      tmp_path / "ckpt.pt")
    ckpt = torch.load(tmp_path / "ckpt.pt", weights_only=True)
    G2, D2 = GeNeVAGenerator.from_config(ckpt["G_config"]), GeNeVADiscriminator.from_config(ckpt["D_config"])
    G2.load_state_dict(ckpt["G"]); D2.load_state_dict(ckpt["D"])
    assert not D2.text_encoder.sentence.embedding.weight.requires_grad  # still frozen word vectors
    for net in (G, G2, D, D2): net.eval()
    ids, lengths = torch.randint(0, 30, (2, 3, 5)), torch.tensor([[5, 2, 1], [3, 3, 0]])
    src = torch.rand(6, 3, 64, 64) * 2 - 1
    with torch.no_grad():
        c1, c2 = D.text_encoder(ids, lengths).flatten(0, 1), D2.text_encoder(ids, lengths).flatten(0, 1)
        z = torch.randn(6, 100)
        assert torch.equal(G(z, c1, src, sample=False).image, G2(z, c2, src, sample=False).image)


def test_lattegan_cpu_demo_layout_unchanged():
    "The CPU preset keeps lib.nn's conv biases and norm affines: its parameter counts are those it always had."
    from lib.nn.layers import count_parameters
    G, D = build("cpu-demo", 24, 32, ortho_init=False, d_ortho_init=False)
    assert (count_parameters(G), count_parameters(G.image_encoder), count_parameters(D)) == (1_003_498, 51_992, 715_424)
    assert G.config["block_bias"] and G.config["encoder_affine"] and G.config["gain_offset"] and D.config["block_bias"]


def official_layout_nets(seed=0, num_classes=24):
    from lib.models.lattegan import OFFICIAL_LAYOUT
    torch.manual_seed(seed)
    return build("cpu-demo", num_classes, TEXT_DIM, **OFFICIAL_LAYOUT)


def test_official_snapshot_round_trip(tmp_path):
    "Ours -> official names and shapes -> ours: every tensor equal, the same drawing and the same judgement."
    from lib.models.lattegan import export_official, load_official
    G, D = official_layout_nets()
    b = lattegan_batch()
    generate(G, b); D(b["target"], b["source"], b["sentence"])  # training mode moves the spectral-norm vectors
    snap = export_official(G, D, tmp_path / "snapshot.pth")
    raw = torch.load(tmp_path / "snapshot.pth", weights_only=True)
    assert sorted(raw) == ["eval_discriminator", "eval_generator", "eval_image_encoder"]
    assert all(k.startswith("module.") for part in raw.values() for k in part)
    gen, dis = raw["eval_generator"], raw["eval_discriminator"]
    assert gen["module.projector.fc.weight_orig"].shape == G.ca.fc.parametrizations.weight.original.shape
    assert dis["module.aux_detector.2.weight_orig"].dim() == 4 and dis["module.projection_encoder.weight"].dim() == 4
    assert not any("parametrizations" in k for part in raw.values() for k in part)
    G2, D2 = official_layout_nets(seed=1)
    load_official(tmp_path / "snapshot.pth", G2, D2)
    for a, c in ((G, G2), (D, D2)):
        sa, sc = a.state_dict(), c.state_dict()
        assert sa.keys() == sc.keys() and all(torch.equal(sa[k], sc[k]) for k in sa)
    assert_same_outputs(G, D, G2, D2, b)
    again = export_official(G2, D2)
    assert all(torch.equal(snap[p][k], again[p][k]) for p in snap for k in snap[p])


def test_official_snapshot_mismatch_is_named():
    from lib.models.lattegan import export_official, load_official
    G, D = official_layout_nets()
    snap = {p: dict(v) for p, v in export_official(G, D).items()}
    snap["eval_image_encoder"].pop("module.image_encoder.1.conv2.weight_orig")
    snap["eval_generator"]["module.resup1.conv1.bias"] = torch.zeros(3)
    with pytest.raises(ValueError, match=r"missing keys: eval_image_encoder/image_encoder\.1\.conv2\.weight_orig; "
                                         r"unexpected keys: eval_generator/resup1\.conv1\.bias"):
        load_official(snap, *official_layout_nets())
    with pytest.raises(ValueError, match="not an official LatteGAN snapshot"):
        load_official({"eval_generator": {}}, G, D)
    with pytest.raises(ValueError, match="the official networks have"):
        export_official(*build("cpu-demo", 24, TEXT_DIM, ortho_init=False, d_ortho_init=False))


def test_load_checkpoint_names_the_converter_for_an_official_snapshot(tmp_path):
    from lib.models.lattegan import export_official
    from lib.train import CheckpointError, load_checkpoint
    export_official(*official_layout_nets(), tmp_path / "exp170.pth")
    with pytest.raises(CheckpointError, match=r"official LatteGAN snapshot .*lib\.models\.lattegan\.load_official"):
        load_checkpoint(tmp_path / "exp170.pth")
