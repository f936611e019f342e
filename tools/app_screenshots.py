"""The static pictures of the widget apps that the docs show next to their tutorials, taken in real JupyterLab.

    python tools/app_screenshots.py --run outputs/runs/main-job-lattegan-s0    # a trained LatteGAN run
    python tools/app_screenshots.py --attngan-run outputs/runs/attngan-main    # a trained AttnGAN run (caption app)
    python tools/app_screenshots.py --pastegan-run outputs/runs/pastegan-main  # a trained PasteGAN run (scene-graph app)
    python tools/app_screenshots.py --pyramid-run outputs/runs/semantic-pyramid # a trained Semantic Pyramid run (editing app)
    python tools/app_screenshots.py --spoken-run outputs/runs/words-by-drawing  # a trained Learning Words by Drawing run

Each app is opened as a reader opens it -- its notebook run with Run All Cells in JupyterLab in headless Chromium
(tests/jupyterlab_browser.py, the harness of the widget tests) -- used a little, and its output area saved as a PNG:

- `nbs/tutorials/images/draw_app.png`: the draw tutorial on `--run`, after three of the dataset's instructions;
- `nbs/images/episode_browser.png`: `browse_episodes` on that run's validation dialogues, at turn 2;
- `nbs/tutorials/images/caption_app.png`: the caption tutorial on `--attngan-run`, a test caption drawn, its
  second word's attention shown;
- `nbs/tutorials/images/scene_graph_app.png`: the scene-graph tutorial on `--pastegan-run`, its first test graph drawn;
- `nbs/tutorials/images/pyramid_app.png`: the editing tutorial on `--pyramid-run`, the first picture's middle
  re-painted from `pool5`;
- `nbs/tutorials/images/spoken_app.png`: the spoken-words tutorial on `--spoken-run`, the first validation caption's
  second phrase chosen.

The pictures are committed; run this again when an app's look changes (it takes about a minute).
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path


ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
from jupyterlab_browser import notebook_in_lab, notebook_with_parameters, write_notebook  # noqa: E402

def draw_app(run: Path, folder: Path, out: Path, turns: int = 3) -> Path:
    "The draw tutorial on `run`, `turns` of the dataset's example instructions typed in, its app saved to `out`."
    notebook_with_parameters(ROOT / "nbs" / "tutorials" / "draw_with_lattegan.ipynb", folder / "draw.ipynb",
                             f"run = {str(run)!r}", replace=False)
    from lib.apps.draw import DrawSession
    examples = DrawSession.from_run(run).examples[:turns]
    box = "type an instruction, then Enter"
    with notebook_in_lab(folder, "draw.ipynb", "docs-draw-app") as page:
        page.open().run_all(timeout=600)
        app = page.find(".jp-CodeCell .jp-OutputArea-output")[-1]
        for turn, instruction in enumerate(examples, 1):
            page.type(box, instruction)
            page.wait(lambda: page.html_text(within=app)[0] == f"turn {turn}", f"turn {turn}", timeout=120)
        page.screenshot("docs-draw-app", of=page.widget(box))   # checks the widgets are connected
        out.parent.mkdir(parents=True, exist_ok=True)
        app.screenshot(str(out))
    return out


def episode_browser(run: Path, folder: Path, out: Path) -> Path:
    "`browse_episodes` on `run`'s validation dialogues, moved to turn 2, saved to `out`."
    data = json.loads((run / "params.json").read_text())["data_dir"]
    name = write_notebook(folder / "browse.ipynb", [
        "from pathlib import Path\nfrom lib.data.geneva import GeNeVAEpisodes, browse_episodes",
        f"app = browse_episodes(GeNeVAEpisodes(Path({data!r}) / 'clevr_val.h5'))\napp"])
    with notebook_in_lab(folder, name, "docs-episode-browser") as page:
        page.open().run_all(timeout=300)
        page.drag_slider("turn", 2)
        page.wait(lambda: page.slider_value("turn") == 2, "turn 2")
        page.screenshot("docs-episode-browser", of=page.widget("episode"))
        out.parent.mkdir(parents=True, exist_ok=True)
        page.find(".jp-CodeCell .jp-OutputArea-output")[-1].screenshot(str(out))
    return out


def caption_app(run: Path, folder: Path, out: Path) -> Path:
    "The caption tutorial on `run`, the first example caption drawn and its second word chosen, its app saved to `out`."
    notebook_with_parameters(ROOT / "nbs" / "tutorials" / "caption_to_image.ipynb", folder / "caption.ipynb",
                             f"run = {str(run)!r}", replace=False)
    from lib.apps.caption import CaptionSession
    session = CaptionSession.from_run(run)
    drawing = session.draw(session.examples[0])
    box = "type a caption, then Enter"
    with notebook_in_lab(folder, "caption.ipynb", "docs-caption-app") as page:
        page.open().run_all(timeout=600)
        app = page.find(".jp-CodeCell .jp-OutputArea-output")[-1]
        page.type(box, session.examples[0])
        page.wait(lambda: page.html_text(within=app)[0].startswith("drawn: "), "the caption drawn", timeout=120)
        page.click(drawing.words[1] if drawing.words[1] != drawing.words[0] else f"{drawing.words[1]} (2)")
        page.screenshot("docs-caption-app", of=page.widget(box))
        out.parent.mkdir(parents=True, exist_ok=True)
        app.screenshot(str(out))
    return out


def first_drawing(tutorial: str, run: Path, folder: Path, out: Path, name: str, status: str, anchor: str) -> Path:
    "A tutorial (`nbs/tutorials/<tutorial>.ipynb`) on `run`, its app's first drawing (status starting `status`) saved to `out`."
    notebook_with_parameters(ROOT / "nbs" / "tutorials" / f"{tutorial}.ipynb", folder / f"{name}.ipynb",
                             f"run = {str(run)!r}", replace=False)
    with notebook_in_lab(folder, f"{name}.ipynb", f"docs-{name}") as page:
        page.open().run_all(timeout=600)
        app = page.find(".jp-CodeCell .jp-OutputArea-output")[-1]
        page.wait(lambda: page.html_text(within=app)[0].startswith(status), "the first drawing", timeout=120)
        page.screenshot(f"docs-{name}", of=page.widget(anchor))
        page.scroll_to(app, "start")      # the app is taller than the crop a plain element screenshot keeps
        out.parent.mkdir(parents=True, exist_ok=True)
        app.screenshot(str(out))
    return out


def scene_graph_app(run: Path, folder: Path, out: Path) -> Path:
    "The scene-graph tutorial on `run`, its first test graph drawn, its app saved to `out`."
    return first_drawing("scene_graph_to_image", run, folder, out, "scene-graph-app", "drawn: ", "Other crop")


def pyramid_app(run: Path, folder: Path, out: Path) -> Path:
    "The Semantic Pyramid editing tutorial on `run`, its first edit drawn, its app saved to `out`."
    return first_drawing("semantic_pyramid_editing", run, folder, out, "pyramid-app", "picture 0 (", "Other noise")


def spoken_app(run: Path, folder: Path, out: Path) -> Path:
    "The spoken-words tutorial on `run`, the first caption's second phrase chosen, its app saved to `out`."
    notebook_with_parameters(ROOT / "nbs" / "tutorials" / "spoken_words.ipynb", folder / "spoken.ipynb",
                             f"run = {str(run)!r}", replace=False)
    from lib.apps.spoken import SpokenSession
    first = SpokenSession.from_run(run).listen(0)
    with notebook_in_lab(folder, "spoken.ipynb", "docs-spoken-app") as page:
        page.open().run_all(timeout=600)
        app = page.find(".jp-CodeCell .jp-OutputArea-output")[-1]
        status = lambda: page.html_text(within=app)[-1]
        page.wait(lambda: status().startswith("frames 0–"), "the whole caption's heat map", timeout=120)
        if len(first.spans) > 1:
            page.click(first.labels[1])
            page.wait(lambda: status().startswith(f"frames {first.spans[1][0]}–"), f"the heat map of {first.labels[1]!r}")
        page.screenshot("docs-spoken-app", of=app)   # checks the widgets are connected
        page.scroll_to(app, "start")
        out.parent.mkdir(parents=True, exist_ok=True)
        app.screenshot(str(out))
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--run", type=Path, help="a trained LatteGAN run folder (e.g. the main job's)")
    ap.add_argument("--attngan-run", type=Path, help="a trained AttnGAN run folder (e.g. the AttnGAN main job's)")
    ap.add_argument("--pastegan-run", type=Path, help="a trained PasteGAN run folder (e.g. the PasteGAN main job's)")
    ap.add_argument("--pyramid-run", type=Path, help="a trained Semantic Pyramid run folder (e.g. its main job's)")
    ap.add_argument("--spoken-run", type=Path, help="a trained Learning Words by Drawing run folder (e.g. its main job's)")
    args = ap.parse_args(argv)
    if not (args.run or args.attngan_run or args.pastegan_run or args.pyramid_run or args.spoken_run):
        ap.error("give --run, --attngan-run, --pastegan-run, --pyramid-run, --spoken-run, or several")
    if args.run:
        run = args.run.resolve()
        with tempfile.TemporaryDirectory() as d:
            print(draw_app(run, Path(d), ROOT / "nbs" / "tutorials" / "images" / "draw_app.png"))
        with tempfile.TemporaryDirectory() as d:
            print(episode_browser(run, Path(d), ROOT / "nbs" / "images" / "episode_browser.png"))
    if args.attngan_run:
        with tempfile.TemporaryDirectory() as d:
            print(caption_app(args.attngan_run.resolve(), Path(d), ROOT / "nbs" / "tutorials" / "images" / "caption_app.png"))
    if args.pastegan_run:
        with tempfile.TemporaryDirectory() as d:
            print(scene_graph_app(args.pastegan_run.resolve(), Path(d),
                                  ROOT / "nbs" / "tutorials" / "images" / "scene_graph_app.png"))
    if args.pyramid_run:
        with tempfile.TemporaryDirectory() as d:
            print(pyramid_app(args.pyramid_run.resolve(), Path(d), ROOT / "nbs" / "tutorials" / "images" / "pyramid_app.png"))
    if args.spoken_run:
        with tempfile.TemporaryDirectory() as d:
            print(spoken_app(args.spoken_run.resolve(), Path(d), ROOT / "nbs" / "tutorials" / "images" / "spoken_app.png"))


if __name__ == "__main__":
    main()
