"""The widget apps used as a person uses them: each notebook is opened in real JupyterLab in headless Chromium, run with
Run → Run All Cells, and its widgets dragged, typed into and clicked (tests/jupyterlab_browser.py); each test asserts
what the person sees change, and keeps a screenshot after every step under build/docs/screenshots/ (widgets-*.png).

Every app we ship joins this file when it lands. All are in the default run (about 20 s each on an idle
machine; the draw and caption apps first train a tiny checkpoint)."""
import io
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import ROOT
from jupyterlab_browser import notebook_in_lab, notebook_with_parameters, write_notebook


def pixels(png: bytes) -> np.ndarray:
    "(H,W,3) uint8 RGB: the picture a widget shows."
    return np.asarray(Image.open(io.BytesIO(png)).convert("RGB"))


def unscaled(png: bytes, scale: int) -> np.ndarray:
    """The picture at its stored size: the apps enlarge with nearest-neighbour (`png_bytes(image, scale)`), each stored
    pixel a `scale`×`scale` block, so every block must be one colour and the block corners are the stored picture."""
    a = pixels(png)
    assert a.shape[0] % scale == 0 and a.shape[1] % scale == 0, a.shape
    small = a[::scale, ::scale]
    assert (np.repeat(np.repeat(small, scale, 0), scale, 1) == a).all(), "the picture is not a nearest-neighbour enlargement"
    return small


def close(a: np.ndarray, b: np.ndarray) -> bool:
    "The same picture up to last-bit float noise (the kernel may run another thread count than the test)."
    return a.shape == b.shape and int(np.abs(a.astype(int) - b.astype(int)).max()) <= 2


# -- the episode browser (lib.data.geneva.browse_episodes) ----------------------------------------------------------

def test_episode_browser_follows_its_sliders(tmp_path):
    from lib.data.geneva import GeNeVAEpisodes
    from lib.synth.iclevr import make_iclevr
    folder = make_iclevr(tmp_path / "data", 3, 1, 1, seed=0, detector_files=False)
    name = write_notebook(tmp_path / "browse.ipynb", [
        "from pathlib import Path\nfrom lib.data.geneva import GeNeVAEpisodes, browse_episodes",
        "app = browse_episodes(GeNeVAEpisodes(Path('data/clevr_train.h5')))\napp"])   # the kernel runs in tmp_path
    episodes = GeNeVAEpisodes(folder / "clevr_train.h5")
    files = [episodes[i] for i in range(len(episodes))]
    background = episodes.background
    scale = 2   # browse_episodes' default

    with notebook_in_lab(tmp_path, name, "widgets-episode-browser") as page:
        page.open().run_all(timeout=300)

        def seen() -> tuple[str, np.ndarray, np.ndarray]:
            "The instruction line and the previous | current pictures, as shown."
            return (page.html_text()[0], unscaled(page.image_bytes(page.image("previous")), scale),
                    unscaled(page.image_bytes(page.image("current")), scale))

        def expected(e: int, t: int) -> tuple[str, np.ndarray, np.ndarray]:
            "The same three read from the file: episode e, turn t."
            ep = files[e]
            return (" ".join(f"{t + 1}/{len(ep)} {ep.instructions[t]}".split()),
                    ep.images[t - 1] if t else background, ep.images[t])

        def shows(e: int, t: int) -> bool:
            text, previous, current = seen()
            want = expected(e, t)
            return text == want[0] and np.array_equal(previous, want[1]) and np.array_equal(current, want[2])

        def check(e: int, t: int, step: str):
            page.wait(lambda: shows(e, t), f"{step}: episode {e}, turn {t} as in the file")
            assert (page.slider_value("episode"), page.slider_value("turn")) == (e, t)

        assert len(files) >= 2 and len(files[0]) >= 2, "the synthetic set needs two episodes, one of two turns or more"
        check(0, 0, "on opening")
        for label in ("previous", "current"):   # each picture at its own size: `scale` screen pixels per stored pixel
            natural, shown = page.shown_size(page.image(label))
            assert natural == shown == (background.shape[1] * scale, background.shape[0] * scale), (label, natural, shown)
        first = seen()
        page.screenshot("widgets-episode-browser-0-opened", of=page.widget("episode"))

        # drag the turn slider one step right: the next instruction, its picture, the previous turn's beside it
        page.drag_slider("turn", 1)
        check(0, 1, "after dragging the turn slider")
        after_turn = seen()
        assert after_turn[0] != first[0] and not np.array_equal(after_turn[2], first[2]), "the turn changed nothing seen"
        page.screenshot("widgets-episode-browser-1-turn", of=page.widget("episode"))

        # type another episode into the episode slider's readout: its turn (clamped to its length) is shown
        last = len(files) - 1
        page.set_slider("episode", last)
        t = min(1, len(files[last]) - 1)
        check(last, t, "after choosing the last episode")
        assert seen()[0] != after_turn[0]
        page.screenshot("widgets-episode-browser-2-episode", of=page.widget("episode"))

        # and drag the episode slider back to the first: the same pictures as before
        page.drag_slider("episode", -last)
        check(0, 1, "after dragging back to the first episode")
        page.screenshot("widgets-episode-browser-3-back", of=page.widget("episode"))

        # the screenshots' check is not blind: once the kernel restarts, the views carry the disconnected icon
        page.menu("Kernel", "Restart Kernel")
        page.confirm()
        page.wait(lambda: page.find(".jupyter-widgets-disconnected"), "the views to show they are disconnected")
        with pytest.raises(AssertionError, match="disconnected"): page.assert_connected()
        page.wait(lambda: page.kernel_status() == "idle", "the restarted kernel")   # a clean shutdown of the server


# -- the draw app (lib.apps.draw.draw_app), as nbs/tutorials/draw_with_lattegan.ipynb shows it ------------------------

TUTORIAL = ROOT / "nbs" / "tutorials" / "draw_with_lattegan.ipynb"


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory) -> Path:
    "A two-step LatteGAN run on a tiny synthetic i-CLEVR: the app's plumbing, not its drawings, is under test."
    from lib.synth.iclevr import make_iclevr
    from lib.systems.lattegan import train_lattegan
    from lib.systems.tirg import create_embeddings
    work = tmp_path_factory.mktemp("tiny-run")
    folder = make_iclevr(work / "iclevr", 6, 2, 1, seed=0, detector_files=False)
    create_embeddings(folder, "iclevr", "minilm", splits=("train", "val"), progress=False)
    return train_lattegan("cpu-demo", data_dir=str(folder), out_root=work / "runs", run_name="tiny", tirg=False, steps=2,
                          batch_size=4, eval_dialogues=0, progress=False, warm_start_steps=0).run.path


def tutorial_on(run: Path, path: Path) -> str:
    "The draw tutorial as a reader runs it, its `parameters` cell pointing at `run`, outputs cleared; written to `path`."
    return notebook_with_parameters(TUTORIAL, path, f"run = {str(run)!r}\nsteps = 2\nseed = 0")


def test_draw_app_draws_undoes_and_starts_over(tiny_run, tmp_path):
    from lib.data.geneva import GeNeVAEpisodes, image_to_tensor, tensor_to_image
    from lib.systems.geneva import dataset_paths
    name = tutorial_on(tiny_run, tmp_path / "draw_with_lattegan.ipynb")
    params = json.loads((tiny_run / "params.json").read_text())
    scale = 3   # draw_app's default
    box = "type an instruction, then Enter"   # the text box's placeholder

    with notebook_in_lab(tmp_path, name, "widgets-draw-app") as page:
        page.open().run_all(timeout=600)
        app = page.find(".jp-CodeCell .jp-OutputArea-output")[-1]   # the last cell shows the app

        def status() -> str: return page.html_text(within=app)[0]
        def picture() -> np.ndarray: return unscaled(page.image_bytes(page.images(app)[0]), scale)
        def thumbnails() -> list[np.ndarray]: return [unscaled(page.image_bytes(i), 1) for i in page.images(app)[1:]]
        def captions() -> list[str]: return page.html_text(within=app)[1:]

        # on opening: the dataset's background (the validation split's, at the generator's size), no turns
        page.wait(lambda: status() == "the background: type the first instruction", "the app's first status")
        background = picture()
        size = background.shape[0]
        natural, shown = page.shown_size(page.images(app)[0])
        assert natural == shown == (size * scale, size * scale), f"the picture is shown at {shown}, not its size {natural}"
        episodes = GeNeVAEpisodes(dataset_paths(params["data_dir"], params["dataset"], "val")["data"])
        expected = tensor_to_image(image_to_tensor(episodes.background, size))
        assert np.array_equal(background, expected), "the app does not start from the dataset's background"
        assert thumbnails() == [] and not page.widget("Undo").is_enabled() and not page.widget("Start over").is_enabled()
        page.screenshot("widgets-draw-app-0-opened", of=page.widget(box))

        def draw(turn: int, instruction: str, before: np.ndarray) -> np.ndarray:
            "Type `instruction` + Enter; wait for 'turn N'; the new picture, which must differ from `before`."
            page.type(box, instruction)
            page.wait(lambda: status() == f"turn {turn}", f"turn {turn} after typing an instruction and Enter", timeout=120)
            now = picture()
            assert not np.array_equal(now, before), f"drawing turn {turn} left the picture unchanged"
            return now

        # type an instruction and press Enter: turn 1, a new picture, its thumbnail under the instruction
        first = "Add a red cube at the center"
        one = draw(1, first, background)
        assert captions() == [f"1. {first}"] and np.array_equal(thumbnails()[0], one)
        assert page.widget(box).get_attribute("value") == "", "the box is not emptied for the next instruction"
        page.screenshot("widgets-draw-app-1-turn", of=page.widget(box))

        # a second instruction: turn 2 drawn from the first picture
        second = "Add a blue sphere on the left of the red cube"
        two = draw(2, second, one)
        assert captions() == [f"1. {first}", f"2. {second}"]
        page.screenshot("widgets-draw-app-2-turns", of=page.widget(box))

        # Undo: exactly the first turn's picture again, one thumbnail
        page.click("Undo")
        page.wait(lambda: status() == "turn 1", "turn 1 after Undo")
        assert np.array_equal(picture(), one), "Undo did not return exactly the previous picture"
        assert captions() == [f"1. {first}"]
        page.screenshot("widgets-draw-app-3-undo", of=page.widget(box))

        # Start over: the background, no turns, nothing to undo
        page.click("Start over")
        page.wait(lambda: status() == "the background: type the first instruction", "the background after Start over")
        assert np.array_equal(picture(), background), "Start over did not return to the background"
        assert thumbnails() == [] and not page.widget("Undo").is_enabled()
        page.screenshot("widgets-draw-app-4-start-over", of=page.widget(box))


# -- the caption app (lib.apps.caption.caption_app), as nbs/tutorials/caption_to_image.ipynb shows it ------------------

CAPTION_TUTORIAL = ROOT / "nbs" / "tutorials" / "caption_to_image.ipynb"


def smoke_run(tmp_path_factory, name: str, train) -> Path:
    "A smoke-preset run of `train` in its own data root (DRAWLAB_DATA set only while it trains)."
    work = tmp_path_factory.mktemp(name)
    with pytest.MonkeyPatch.context() as env:
        env.setenv("DRAWLAB_DATA", str(work / "data"))
        return train("smoke", out_root=work / "runs", run_name="tiny", progress=False).run.path


@pytest.fixture(scope="module")
def tiny_attngan(tmp_path_factory) -> Path:
    "A four-step AttnGAN run (smoke preset) on a 60-picture synthetic folder: the app's plumbing is under test."
    from lib.systems.attngan import train_attngan
    return smoke_run(tmp_path_factory, "tiny-attngan", train_attngan)


def test_caption_app_draws_stages_and_each_words_attention(tiny_attngan, tmp_path):
    from lib.apps.caption import CaptionSession
    from lib.data.geneva import tensor_to_image
    notebook_with_parameters(CAPTION_TUTORIAL, tmp_path / "caption_to_image.ipynb",
                             f"run = {str(tiny_attngan)!r}\ndamsm_steps = 2\nsteps = 2\nseed = 0")
    session = CaptionSession.from_run(tiny_attngan)   # the same drawings, made here to compare with what is shown
    caption = session.examples[0]
    want = session.draw(caption)
    scale, box = 3, "type a caption, then Enter"      # caption_app's default scale; the box's placeholder
    last = want.images[-1].shape[-1]

    with notebook_in_lab(tmp_path, "caption_to_image.ipynb", "widgets-caption-app") as page:
        page.open().run_all(timeout=600)
        app = page.find(".jp-CodeCell .jp-OutputArea-output")[-1]   # the last cell shows the app
        def status() -> str: return page.html_text(within=app)[0]
        def stages() -> list[np.ndarray]:
            pics = page.images(app)[:len(want.images)]
            return [unscaled(page.image_bytes(p), scale * last // want.images[i].shape[-1]) for i, p in enumerate(pics)]
        def attention() -> np.ndarray: return unscaled(page.image_bytes(page.images(app)[len(want.images)]), scale)

        page.wait(lambda: status() == "type a caption, or pick one of the dataset's", "the app's first status")
        assert not page.widget("Other noise").is_enabled()

        # type a caption and press Enter: every stage at its own size, the first word's attention on the last
        page.type(box, caption)
        page.wait(lambda: status() == f"drawn: {' '.join(want.words)} (noise 0)", "the caption drawn", timeout=120)
        shown = stages()
        assert [s.shape[0] for s in shown] == [im.shape[-1] for im in want.images], [s.shape for s in shown]
        assert all(close(s, tensor_to_image(im)) for s, im in zip(shown, want.images)), "the stages are not the caption's"
        assert close(attention(), want.overlay(0)), "the map shown is not the first word's"
        page.screenshot("widgets-caption-app-1-drawn", of=page.widget(box))

        # click another word: its map
        word = want.words[1] if want.words[1] != want.words[0] else f"{want.words[1]} (2)"
        page.click(word)
        page.wait(lambda: close(attention(), want.overlay(1)), f"the attention map of {word!r}")
        page.screenshot("widgets-caption-app-2-word", of=page.widget(box))

        # Other noise: the same caption, the next seed's sample
        page.click("Other noise")
        page.wait(lambda: status().endswith("(noise 1)"), "the caption drawn with noise 1")
        other = session.draw(caption, seed=1)
        assert not np.array_equal(tensor_to_image(other.images[-1]), tensor_to_image(want.images[-1]))   # another sample
        assert close(stages()[-1], tensor_to_image(other.images[-1])) and not np.array_equal(stages()[-1], shown[-1])
        page.screenshot("widgets-caption-app-3-other-noise", of=page.widget(box))

        # a caption without a known word: said, the drawing kept
        page.type(box, "zyzzyva quux")
        page.wait(lambda: status() == "no word of the caption is in the vocabulary: zyzzyva, quux", "the refusal")
        assert close(stages()[-1], tensor_to_image(other.images[-1]))
        page.screenshot("widgets-caption-app-4-unknown-words", of=page.widget(box))


# -- the scene-graph app (lib.apps.scene_graph.scene_app), as nbs/tutorials/scene_graph_to_image.ipynb shows it -------

SCENE_TUTORIAL = ROOT / "nbs" / "tutorials" / "scene_graph_to_image.ipynb"


@pytest.fixture(scope="module")
def tiny_pastegan(tmp_path_factory) -> Path:
    "A four-step PasteGAN run (smoke preset) on a 60-picture synthetic scene world: the app's plumbing is under test."
    from lib.synth.scenes import make_scenes
    from lib.systems.pastegan import train_pastegan
    work = tmp_path_factory.mktemp("tiny-pastegan")
    make_scenes(work / "scenes", 60, 0)
    return train_pastegan("smoke", data_dir=str(work / "scenes" / "vg"), out_root=work / "runs", run_name="tiny",
                          progress=False).run.path


def test_scene_app_swaps_a_crop_and_removes_an_object(tiny_pastegan, tmp_path):
    from lib.apps.scene_graph import GraphObject, Scene, SceneSession
    from lib.data.geneva import tensor_to_image
    notebook_with_parameters(SCENE_TUTORIAL, tmp_path / "scene_graph_to_image.ipynb",
                             f"run = {str(tiny_pastegan)!r}\nsteps = 2\nseed = 0")
    session = SceneSession.from_run(tiny_pastegan)   # the same drawings, made here to compare with what is shown
    scene = session.examples[0]
    first = session.draw(scene)
    options = session.candidates(scene, 0)
    assert len(options) >= 2 and first.crops[0] == options[0]
    o = scene.objects[0]
    swapped = Scene([GraphObject(o.name, o.box, options[1]), *scene.objects[1:]], scene.relations)
    removed = swapped.without(0)
    want = {name: session.draw(s) for name, s in (("first", scene), ("swapped", swapped), ("removed", removed))}
    scale = 4                                          # scene_app's default scale

    with notebook_in_lab(tmp_path, "scene_graph_to_image.ipynb", "widgets-scene-app") as page:
        page.open().run_all(timeout=600)
        app = page.find(".jp-CodeCell .jp-OutputArea-output")[-1]   # the last cell shows the app
        def status() -> str: return page.html_text(within=app)[0]
        def shown() -> tuple[np.ndarray, np.ndarray]:
            layout, picture = page.images(app)[:2]
            return unscaled(page.image_bytes(layout), scale), unscaled(page.image_bytes(picture), scale)
        def shows(name: str) -> bool:
            layout, picture = shown()
            return close(layout, tensor_to_image(want[name].layout)) and close(picture, tensor_to_image(want[name].image))
        def differences(name: str) -> str:
            return " ".join(f"{what}: max |shown − expected| {int(np.abs(a.astype(int) - tensor_to_image(b).astype(int)).max())}"
                            for what, a, b in zip(("crops", "picture"), shown(), (want[name].layout, want[name].image)))
        def expect(name: str, what: str):
            try: page.wait(lambda: shows(name), what)
            except AssertionError as e: raise AssertionError(f"{e}; {differences(name)}") from None

        # the first test graph, drawn from each object's best-ranked crop
        page.wait(lambda: status() == f"drawn: {len(scene.objects)} objects, {len(scene.relations)} relations", "the first graph drawn")
        assert {"crops in their boxes", "the picture"} <= set(page.html_text(within=app)[1:])
        expect("first", "the first graph's crops and picture")
        page.screenshot("widgets-scene-app-1-drawn", of=page.widget("Other crop"))

        # Other crop: object 0 (selected) drawn from its class's second-best crop; the crops panel and the picture change
        page.click("Other crop")
        expect("swapped", "the picture with object 0's other crop")
        assert not np.array_equal(tensor_to_image(want["swapped"].layout), tensor_to_image(want["first"].layout))
        page.screenshot("widgets-scene-app-2-other-crop", of=page.widget("Other crop"))

        # Remove object: object 0 and its relations leave the graph
        page.click("Remove object")
        page.wait(lambda: status() == f"drawn: {len(removed.objects)} objects, {len(removed.relations)} relations",
                  "the graph without object 0")
        expect("removed", "the picture without object 0")
        page.screenshot("widgets-scene-app-3-removed", of=page.widget("Other crop"))


# -- the pyramid editing app (lib.apps.pyramid.pyramid_app), as nbs/tutorials/semantic_pyramid_editing.ipynb shows it --

PYRAMID_TUTORIAL = ROOT / "nbs" / "tutorials" / "semantic_pyramid_editing.ipynb"


@pytest.fixture(scope="module")
def tiny_pyramid(tmp_path_factory) -> Path:
    "A four-step Semantic Pyramid run (smoke preset, classifiers of four steps) on a small synthetic places world."
    from lib.systems.semantic_pyramid import train_semantic_pyramid
    return smoke_run(tmp_path_factory, "tiny-pyramid", train_semantic_pyramid)


def test_pyramid_app_repaints_inpaints_and_draws_other_noise(tiny_pyramid, tmp_path):
    from lib.apps.pyramid import PyramidSession
    from lib.data.geneva import tensor_to_image
    notebook_with_parameters(PYRAMID_TUTORIAL, tmp_path / "semantic_pyramid_editing.ipynb",
                             f"run = {str(tiny_pyramid)!r}\nclassifier_steps = 2\nsteps = 2\nseed = 0")
    session = PyramidSession.from_run(tiny_pyramid)   # the same drawings, made here to compare with what is shown
    S, scale = session.size, 3                         # pyramid_app's default scale
    box = (S // 4, S // 4, S // 2, S // 2)             # the app's first region
    want = {"first": session.draw(0, "repaint", "pool5", box),
            "pool1": session.draw(0, "repaint", "pool1", box),
            "narrow": session.draw(0, "repaint", "pool1", (box[0], box[1], 20, box[3])),
            "inpaint": session.draw(0, "inpaint", "pool1", (box[0], box[1], 20, box[3])),
            "noise": session.draw(0, "inpaint", "pool1", (box[0], box[1], 20, box[3]), seed=1),
            "composite": session.draw(0, "composite", "pool1", (box[0], box[1], 20, box[3]), other=1, seed=1)}
    assert not np.array_equal(want["first"].pictures.numpy(), want["pool1"].pictures.numpy())

    with notebook_in_lab(tmp_path, "semantic_pyramid_editing.ipynb", "widgets-pyramid-app") as page:
        page.open().run_all(timeout=600)
        app = page.find(".jp-CodeCell .jp-OutputArea-output")[-1]   # the last cell shows the app
        def status() -> str: return page.html_text(within=app)[0]
        def panel(label: str) -> np.ndarray: return unscaled(page.image_bytes(page.image(label, within=app)), scale)
        def shows(name: str) -> bool:
            d = want[name]
            return (close(panel("what the edit starts from"), d.outlined())
                    and all(close(panel(f"noise {k + 1}"), tensor_to_image(x)) for k, x in enumerate(d.pictures)))
        def expect(name: str, what: str):
            d = want[name]
            page.wait(lambda: f"{d.level}, region {d.box}" in status() and status().endswith(f"(noise {d.seed})"),
                      f"the status of {what}")
            page.wait(lambda: shows(name), what)

        # picture 0's middle re-painted from pool5: the source outlined, three noises
        expect("first", "picture 0 re-painted from pool5")
        assert status().startswith("picture 0 (") and close(panel("source"), want["first"].outlined())
        page.screenshot("widgets-pyramid-app-1-repaint", of=page.widget("Other noise"))

        # the level pool1: the same region re-painted from the shallowest level
        page.click("pool1")
        expect("pool1", "the region re-painted from pool1")
        page.screenshot("widgets-pyramid-app-2-pool1", of=page.widget("Other noise"))

        # a narrower region, typed into the width slider's readout
        page.set_slider("width", 20)
        expect("narrow", "the narrower region re-painted")

        # inpaint: the edit starts from the picture with the region blanked
        page.click("inpaint")
        expect("inpaint", "the region blanked and filled")
        assert not close(panel("what the edit starts from"), panel("source"))
        page.screenshot("widgets-pyramid-app-3-inpaint", of=page.widget("Other noise"))

        # Other noise: the same edit with the next noise
        page.click("Other noise")
        expect("noise", "the inpainting with noise 1")

        # composite: picture 1's pool1 pasted into the region; then asked at an fc level: refused, said, the pictures kept
        page.click("composite")
        expect("composite", "picture 1 pasted into the region")
        page.click("fc7")
        page.wait(lambda: status() == "composite pastes at a conv level (pool1, pool2, pool3, pool4, pool5), not fc7", "the refusal")
        assert shows("composite")
        page.screenshot("widgets-pyramid-app-4-refused", of=page.widget("Other noise"))


# -- the spoken-caption app (lib.apps.spoken.spoken_app), as nbs/tutorials/spoken_words.ipynb shows it ---------------

SPOKEN_TUTORIAL = ROOT / "nbs" / "tutorials" / "spoken_words.ipynb"


@pytest.fixture(scope="module")
def tiny_words(tmp_path_factory) -> Path:
    "A four-step Learning Words by Drawing run (smoke preset) on a 24-caption synthetic spoken-CLEVR folder."
    from lib.systems.words_by_drawing import train_words_by_drawing
    return smoke_run(tmp_path_factory, "tiny-words", train_words_by_drawing)


def test_spoken_app_plays_a_caption_and_shows_where_each_phrase_points(tiny_words, tmp_path):
    from lib.apps.spoken import SpokenSession, denormalise
    notebook_with_parameters(SPOKEN_TUTORIAL, tmp_path / "spoken_words.ipynb", f"run = {str(tiny_words)!r}\nsteps = 2\nitems = 24")
    session = SpokenSession.from_run(tiny_words)   # the same hearings, made here to compare with what is shown
    first, second = session.listen(0), session.listen(1)
    scale = 3                                       # spoken_app's default
    assert len(first.spans) >= 2, "the first caption needs two phrases"

    with notebook_in_lab(tmp_path, "spoken_words.ipynb", "widgets-spoken-app") as page:
        page.open().run_all(timeout=600)
        app = page.find(".jp-CodeCell .jp-OutputArea-output")[-1]   # the last cell shows the app
        def heat() -> np.ndarray: return unscaled(page.image_bytes(page.image("where the frames point", within=app)), scale)
        def sound() -> bytes: return page.image_bytes(page.find("audio", app)[0])
        def status() -> str: return page.html_text(within=app)[-1]
        def frames(h, a, b) -> bool: return status().startswith(f"frames {a}–{b} ") and close(heat(), h.overlay(a, b))

        # on opening: caption 0, its audio ready to play, the whole caption's heat map
        T = first.spectrogram.shape[1]
        page.wait(lambda: frames(first, 0, T), "the whole first caption's heat map")
        assert first.caption in page.html_text(within=app)[0] and sound() == first.wav
        assert close(unscaled(page.image_bytes(page.image("picture", within=app)), scale), denormalise(first.picture))
        page.screenshot("widgets-spoken-app-1-whole", of=app)

        # a phrase's button: its frames, where they point, the spectrogram dimmed outside them
        whole_spectrogram = page.image_bytes(page.image("spectrogram", within=app))
        page.click(first.labels[1])
        page.wait(lambda: frames(first, *first.spans[1]), f"the heat map of {first.labels[1]!r}")
        assert page.image_bytes(page.image("spectrogram", within=app)) != whole_spectrogram
        page.screenshot("widgets-spoken-app-2-phrase", of=app)

        # the next caption: its audio, the whole of it again
        page.drag_slider("caption", 1)
        page.wait(lambda: sound() == second.wav, "the second caption's audio")
        page.wait(lambda: frames(second, 0, second.spectrogram.shape[1]), "the whole second caption's heat map")
        assert second.caption in page.html_text(within=app)[0]
