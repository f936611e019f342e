"""The JupyterLab experience: the widget apps run through the project kernel, and JupyterLab itself, in headless
Chromium, renders a saved episode browser (screenshot under build/docs/screenshots/jupyterlab-widget.png)."""
import json
import os
import re
import socket
import subprocess
import time
import urllib.request
from pathlib import Path
from queue import Empty

import nbformat
import pytest
from jupyter_client import BlockingKernelClient
from nbclient import NotebookClient

from conftest import BIN, ROOT
from test_docs import SHOTS, chromium

WIDGET_STATE = "application/vnd.jupyter.widget-state+json"
VIEW = "application/vnd.jupyter.widget-view+json"

# The widget apps and the code that shows each one (extend this list when a module adds an app).
APPS = {
    "episode browser": [
        "from pathlib import Path\nfrom lib.synth.iclevr import make_iclevr\nfrom lib.data.geneva import GeNeVAEpisodes, browse_episodes",
        "folder = make_iclevr(Path('data'), 3, 1, 1, seed=0, detector_files=False)\n"
        "app = browse_episodes(GeNeVAEpisodes(folder / 'clevr_train.h5'))\napp",
    ],
    "draw with LatteGAN": [   # a two-step run: the app's plumbing, not its pictures, is under test here
        "from pathlib import Path\nfrom lib.synth.iclevr import make_iclevr\nfrom lib.systems.tirg import create_embeddings\n"
        "from lib.systems.lattegan import train_lattegan\nfrom lib.apps.draw import DrawSession, draw_app",
        "folder = make_iclevr(Path('data'), 6, 2, 1, seed=0, detector_files=False)\n"
        "create_embeddings(folder, 'iclevr', 'minilm', splits=('train', 'val'), progress=False)\n"
        "engine = train_lattegan('cpu-demo', data_dir=str(folder), out_root='runs', run_name='tiny', tirg=False, steps=2,\n"
        "                        batch_size=4, eval_dialogues=0, progress=False, warm_start_steps=0)",
        "app = draw_app(DrawSession.from_run(engine.run.path))\napp.children[0].children[0].value = 'Add a red cube at the center'\napp",
    ],
}


def executed(cells: list[str], cwd: Path) -> nbformat.NotebookNode:
    "A notebook of `cells` run through the `drawlab` kernel, its widget state stored as JupyterLab saves it."
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in cells])
    nb.metadata["kernelspec"] = {"name": "drawlab", "display_name": "drawlab", "language": "python"}
    NotebookClient(nb, kernel_name="drawlab", timeout=300, store_widget_state=True,
                   resources={"metadata": {"path": str(cwd)}}).execute()
    return nb


@pytest.mark.parametrize("app", list(APPS))
def test_widget_apps_run_in_the_kernel(app, tmp_path):
    nb = executed(APPS[app], tmp_path)
    views = [o for o in nb.cells[-1].outputs if VIEW in o.get("data", {})]
    assert views, f"{app}: the last cell shows no widget: {nb.cells[-1].outputs}"
    state = nb.metadata["widgets"][WIDGET_STATE]["state"]
    models = {s["model_name"] for s in state.values()}
    assert {"VBoxModel", "ImageModel"} <= models, models


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0)); return s.getsockname()[1]


def api(url: str, token: str, path: str, body: dict | None = None) -> dict:
    "A JSON call to the Jupyter server's REST API (POST when `body` is given)."
    req = urllib.request.Request(f"{url}/api/{path}?token={token}", method="POST" if body is not None else "GET",
                                 data=None if body is None else json.dumps(body).encode(),
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=60) as r: return json.load(r)


def kernel_ready(url: str, token: str, notebook: str, runtime: Path, timeout: float = 180) -> None:
    """Start the `drawlab` kernel session of `notebook` on the server and wait until the kernel answers a kernel_info
    request. jupyter_client's `wait_for_ready` declares the kernel dead after one missed heartbeat (a 1 s budget a
    loaded 2-core CI machine can miss while the kernel starts), so ask on the shell channel until the deadline,
    checking through the server that the kernel still exists."""
    session = api(url, token, "sessions", {"path": notebook, "name": notebook, "type": "notebook",
                                            "kernel": {"name": "drawlab"}})
    kernel_id = session["kernel"]["id"]
    client = BlockingKernelClient(connection_file=str(runtime / f"kernel-{kernel_id}.json"))
    client.load_connection_file(); client.start_channels()
    deadline, states = time.time() + timeout, []
    try:
        while time.time() < deadline:
            msg_id = client.kernel_info()
            try:
                while True:   # replies to earlier, unanswered requests may arrive first
                    reply = client.get_shell_msg(timeout=5)
                    if reply["parent_header"].get("msg_id") == msg_id: return
            except Empty:
                states.append(api(url, token, f"kernels/{kernel_id}")["execution_state"])   # 404 (an error) if it is gone
        pytest.fail(f"the drawlab kernel did not answer kernel_info in {timeout:.0f} s; server states: {states[-5:]}")
    finally: client.stop_channels()


def test_jupyterlab_renders_the_episode_browser(tmp_path):
    nb = executed(APPS["episode browser"], tmp_path)
    nbformat.write(nb, tmp_path / "browser.ipynb")
    port, token = free_port(), "drawlab-test"
    # JupyterLab restores widgets from a notebook's saved state only with the widget manager's saveState on
    settings = tmp_path / "lab-settings"
    (settings / "@jupyter-widgets" / "jupyterlab-manager").mkdir(parents=True)
    (settings / "@jupyter-widgets" / "jupyterlab-manager" / "plugin.jupyterlab-settings").write_text('{"saveState": true}')
    (settings / "@jupyterlab" / "apputils-extension").mkdir(parents=True)
    (settings / "@jupyterlab" / "apputils-extension" / "notification.jupyterlab-settings").write_text(
        '{"fetchNews": "false", "checkForUpdates": false}')
    env = {**os.environ, "JUPYTER_PATH": str(ROOT / ".venv" / "share" / "jupyter"), "HOME": str(tmp_path),
           "JUPYTERLAB_SETTINGS_DIR": str(settings), "JUPYTER_RUNTIME_DIR": str(tmp_path / "runtime")}
    # outputs of an untrusted notebook show only in their safe (text) form: sign it as a user saving it would
    subprocess.run([str(BIN / "jupyter"), "trust", str(tmp_path / "browser.ipynb")], env=env, check=True,
                   capture_output=True)
    # the server's log goes to a file: an unread pipe that fills up would stall the server
    log = tmp_path / "jupyterlab.log"
    log_file = log.open("wb")
    lab = subprocess.Popen([str(BIN / "jupyter"), "lab", "--no-browser", "--allow-root", f"--port={port}", "--ip=127.0.0.1",
                            f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={tmp_path}",
                            "--LabApp.news_url=", "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate"],
                           stdout=log_file, stderr=subprocess.STDOUT, env=env)
    try:
        url = f"http://127.0.0.1:{port}"
        for _ in range(120):
            try: urllib.request.urlopen(f"{url}/api/status?token={token}", timeout=2); break
            except OSError: time.sleep(0.5)
        else: pytest.fail("JupyterLab did not start:\n" + log.read_text(errors="replace")[-3000:])
        # The saved widgets become views only once the notebook's kernel is connected; a kernel started by the page
        # itself can outlast headless Chromium's time budget. Start it first, as a session JupyterLab then joins.
        try: kernel_ready(url, token, "browser.ipynb", tmp_path / "runtime")
        except (Exception, pytest.fail.Exception) as e:
            raise AssertionError(f"{e}\n--- JupyterLab's log\n{log.read_text(errors='replace')[-3000:]}") from e
        page = f"{url}/lab/tree/browser.ipynb?token={token}"
        flags = ["--headless", "--no-sandbox", "--disable-gpu", "--virtual-time-budget=40000", "--window-size=1280,900"]
        SHOTS.mkdir(parents=True, exist_ok=True)
        shot = SHOTS / "jupyterlab-widget.png"
        rendered = False
        for attempt in range(3):   # the first load of a fresh JupyterLab may still show the launcher
            dom = subprocess.run([chromium(), *flags, "--dump-dom", page], capture_output=True, text=True, timeout=180).stdout
            body = re.sub(r"<(style|script)[^>]*>.*?</\1>", "", dom, flags=re.S)   # class names in CSS don't count
            rendered = bool(re.search(r'<img[^>]*class="[^"]*widget-image', body) or re.search(r'class="[^"]*widget-image', body)) \
                and bool(re.search(r'class="[^"]*widget-slider', body))
            if rendered: break
        (SHOTS / "jupyterlab-widget.html").write_text(dom)
        subprocess.run([chromium(), *flags, f"--screenshot={shot}", page], capture_output=True, timeout=180)
        # the saved widget state became live views: the sliders and the pictures of the browser
        assert rendered, "the browser's widgets were not rendered by JupyterLab (only their text form)"
        assert shot.exists() and shot.stat().st_size > 20_000
    finally:
        lab.terminate(); lab.wait(timeout=30); log_file.close()


def git_status(*paths: str) -> str:
    return subprocess.run(["git", "status", "--porcelain", "--", *paths], cwd=ROOT, capture_output=True, text=True,
                          check=True).stdout


def test_a_tutorial_opened_run_saved_and_closed_in_jupyterlab_leaves_git_clean(tmp_path):
    """A person opens a tutorial of the checkout in JupyterLab (`./drawlab lab` serves the checkout), runs it, saves and
    closes it: the file on disk is byte for byte what git has (lib.core.clean_source_notebook, the pre-save hook that
    `./drawlab setup` installs, strips the outputs, counts and JupyterLab's metadata)."""
    from jupyterlab_browser import notebook_in_lab
    notebook = "nbs/tutorials/read_a_run.ipynb"   # about 20 s to run
    path = ROOT / notebook
    before, status, saved_at = path.read_bytes(), git_status("nbs"), path.stat().st_mtime_ns
    try:
        with notebook_in_lab(ROOT, notebook, "jupyterlab-round-trip", home=tmp_path / "home") as page:
            page.open().run_all(timeout=300)
            assert any(page.find(".jp-OutputArea-output")), "the run showed no output"
            page.menu("File", "Save Notebook")
            page.wait(lambda: path.stat().st_mtime_ns != saved_at, "the notebook to be saved")
            page.menu("File", "Close and Shut Down Notebook")
            page.confirm()
            page.wait(lambda: not page.find(".jp-NotebookPanel .jp-Cell"), "the notebook to close")
        after = path.read_bytes()
    finally:
        path.write_bytes(before)   # never leave the checkout modified, whatever failed
    assert after == before, "saving from JupyterLab changed the tracked notebook"
    assert git_status("nbs") == status
