"""A browser harness for the widget apps: real JupyterLab driven in headless Chromium, as a person uses it.

`JupyterLab` starts `jupyter lab` on 127.0.0.1 with a token in a private working folder, the project's `drawlab` kernel
found through JUPYTER_PATH; `Page` opens a notebook there, runs every cell through JupyterLab's own menu
(Run → Run All Cells), waits until the kernel is idle with every cell executed, and then acts on the widgets as a
person does: find one by its description (or placeholder, or button text), drag or type a slider's value, type into a
text box and press Enter, click a button, and read the bytes a picture shows (its `<img>` blob).

Why Selenium with Debian's `chromium-driver`: the machines (CI included) reach package registries only, so no browser
build can be downloaded -- Playwright's own Chromium is out, and Selenium's driver manager is never asked (the driver's
path is given). Debian's `chromium-driver` is built from the same source as the system `chromium` (the version always
matches), installs with one apt line as `test_docs.chromium()` installs the browser, and Selenium's WebDriver gives real
pointer drags, key presses and clicks. Playwright attached over CDP to the system Chromium would work too, but it pins
its protocol to its own browser build and adds a Node driver to the dependencies; Selenium is one pure-Python wheel.

Every check that fails carries the notebook's DOM, the browser console and JupyterLab's log (`Page.diagnose`);
`Page.screenshot` keeps a picture under build/docs/screenshots/ after asserting that no widget is disconnected."""
from __future__ import annotations

import base64
import contextlib
import json
import os
import re
import shutil
import socket
import subprocess
import time
import urllib.request
from pathlib import Path
from typing import Callable

from selenium import webdriver
from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException
from selenium.webdriver import ActionChains
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys

from conftest import BIN, ROOT
from test_docs import SHOTS, chromium

TOKEN = "drawlab-test"
# the broken-link icon ipywidgets puts on a view whose kernel connection is gone, and the placeholders a widget view
# becomes when its model cannot be found or rendered
DISCONNECTED = ".jupyter-widgets-disconnected, .jupyter-widgets-error-widget"
BROKEN_TEXT = ("Error displaying widget", "Error rendering output item", "model not found")
KERNELSPEC = {"name": "drawlab", "display_name": "drawlab", "language": "python"}   # as nbdev-clean writes it


def write_notebook(path: Path, cells: list[str]) -> str:
    "A notebook of `cells` (not run) on the drawlab kernel, written to `path`; its name, for JupyterLab."
    import nbformat
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in cells])
    nb.metadata["kernelspec"] = KERNELSPEC
    nbformat.write(nb, path)
    return path.name


def notebook_with_parameters(src: Path, dst: Path, parameters: str, replace: bool = True) -> str:
    """A copy of the notebook `src` at `dst` as a reader runs it: its `parameters` cell's source replaced by
    `parameters` (or, `replace=False`, followed by it), outputs cleared, on the drawlab kernel; its name."""
    import nbformat
    nb = nbformat.read(src, as_version=4)
    cell = next(c for c in nb.cells if "parameters" in c.metadata.get("tags", []))
    cell.source = parameters if replace else f"{cell.source}\n{parameters}"
    for c in nb.cells:
        if c.cell_type == "code": c.outputs, c.execution_count = [], None
    nb.metadata["kernelspec"] = KERNELSPEC
    nbformat.write(nb, dst)
    return dst.name


def chromedriver() -> str:
    "Debian's chromium-driver (it matches the system Chromium), installed from Debian's packages when missing."
    chromium()
    if path := shutil.which("chromedriver"): return path
    env = {"DEBIAN_FRONTEND": "noninteractive", "PATH": "/usr/sbin:/usr/bin:/sbin:/bin"}
    apt = ["apt-get", "install", "-y", "--no-install-recommends", "chromium-driver"]
    subprocess.run(["apt-get", "update"], capture_output=True, text=True, env=env)
    p = subprocess.run(apt, capture_output=True, text=True, env=env)
    assert p.returncode == 0 and shutil.which("chromedriver"), \
        f"could not install Debian's chromium-driver: {' '.join(apt)}\n{p.stderr[-2000:]}"
    return shutil.which("chromedriver")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0)); return s.getsockname()[1]


def lab_settings(folder: Path) -> Path:
    "JupyterLab user settings for a quiet test server: no news, no update checks."
    (folder / "@jupyterlab" / "apputils-extension").mkdir(parents=True, exist_ok=True)
    (folder / "@jupyterlab" / "apputils-extension" / "notification.jupyterlab-settings").write_text(
        '{"fetchNews": "false", "checkForUpdates": false}')
    return folder


class JupyterLab:
    "`jupyter lab` serving `root` on 127.0.0.1 with a token; its HOME is `home` (default `root/.home`), its log `home/jupyterlab.log`."
    def __init__(self, root: Path, home: Path | None = None):
        self.root, self.port = Path(root), free_port()
        home = Path(home) if home is not None else self.root / ".home"
        home.mkdir(parents=True, exist_ok=True)
        self.url, self.log = f"http://127.0.0.1:{self.port}", home / "jupyterlab.log"
        # JUPYTER_PATH, set by conftest, finds this venv's `drawlab` kernel first
        self.env = {**os.environ, "HOME": str(home),
                    "JUPYTERLAB_SETTINGS_DIR": str(lab_settings(home / "lab-settings")),
                    "JUPYTER_RUNTIME_DIR": str(home / "runtime"),
                    # the kernel imports lib from this checkout, whatever the notebook's folder
                    "PYTHONPATH": os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p)}

    def __enter__(self) -> JupyterLab:
        self._log_file = self.log.open("wb")   # a file, not a pipe: an unread pipe that fills up stalls the server
        self.proc = subprocess.Popen(
            [str(BIN / "jupyter"), "lab", "--no-browser", "--allow-root", "--ip=127.0.0.1", f"--port={self.port}",
             f"--IdentityProvider.token={TOKEN}", f"--ServerApp.root_dir={self.root}",
             "--LabApp.news_url=", "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
             "--LabApp.expose_app_in_browser=True"],   # window.jupyterapp: read the kernel's state, never act through it
            cwd=self.root, stdout=self._log_file, stderr=subprocess.STDOUT, env=self.env)
        deadline = time.time() + 120
        while time.time() < deadline:
            if self.proc.poll() is not None: break
            try: self.api("status"); return self
            except OSError: time.sleep(0.5)
        self.__exit__()
        raise AssertionError("JupyterLab did not start:\n" + self.log_tail())

    def __exit__(self, *exc):
        with contextlib.suppress(Exception):
            for s in self.api("sessions"): self.api(f"sessions/{s['id']}", method="DELETE")
        self.proc.terminate()
        try: self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired: self.proc.kill(); self.proc.wait()
        self._log_file.close()

    def api(self, path: str, method: str = "GET"):
        "A call to the server's REST API; the decoded JSON answer (None when empty)."
        req = urllib.request.Request(f"{self.url}/api/{path}?token={TOKEN}", method=method)
        with urllib.request.urlopen(req, timeout=30) as r:
            body = r.read()
        return json.loads(body) if body else None

    def log_tail(self, n: int = 4000) -> str:
        return self.log.read_text(errors="replace")[-n:] if self.log.exists() else "(no log)"


def browser(window: tuple[int, int] = (1280, 1200)):
    "Headless Chromium under Selenium, through Debian's chromedriver (never Selenium's driver download)."
    options = webdriver.ChromeOptions()
    options.binary_location = chromium()
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 f"--window-size={window[0]},{window[1]}", "--disable-search-engine-choice-screen"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return webdriver.Chrome(options=options, service=webdriver.ChromeService(executable_path=chromedriver()))


class Page:
    "One notebook open in JupyterLab in a browser, and what a person does with its widgets."
    def __init__(self, lab: JupyterLab, driver, notebook: str, shots: Path = SHOTS, timeout: float = 60):
        self.lab, self.driver, self.notebook, self.shots, self.timeout = lab, driver, notebook, shots, timeout

    # -- waiting, and saying why a wait failed ---------------------------------------------------------------
    def wait(self, condition: Callable[[], object], what: str, timeout: float | None = None, poll: float = 0.25):
        "The first true value of `condition()`, asked until `timeout`; else fail saying `what` was awaited."
        deadline, last = time.time() + (timeout or self.timeout), None
        while time.time() < deadline:
            try:
                if value := condition(): return value
            except (StaleElementReferenceException, NoSuchElementException) as e: last = e   # the view was re-rendered
            time.sleep(poll)
        raise AssertionError(f"waited {timeout or self.timeout:.0f} s for {what}" + (f" (last: {last!r})" if last else ""))

    def dom(self) -> str:
        "Each cell's prompt and outputs as HTML, without styles, scripts and icons (the page's body when no notebook is open)."
        html = self.driver.execute_script("""
            const panel = document.querySelector('.jp-NotebookPanel:not(.lm-mod-hidden)');
            if (!panel) return document.body.outerHTML;
            return [...panel.querySelectorAll('.jp-Cell')].map((c, i) => {
              const prompt = c.querySelector('.jp-InputArea-prompt'), out = c.querySelector('.jp-OutputArea');
              return `<!-- cell ${i} ${prompt ? prompt.textContent : ''} -->\\n` + (out ? out.outerHTML : '');
            }).join('\\n');""")
        return re.sub(r"<(style|script|svg)[^>]*>.*?</\1>", "", html, flags=re.S)

    def console(self) -> str:
        with contextlib.suppress(Exception):
            return "\n".join(f"{e['level']} {e['message'][:400]}" for e in self.driver.get_log("browser")
                             if e["level"] != "DEBUG")[-4000:]
        return "(no console log)"

    @contextlib.contextmanager
    def diagnose(self, name: str):
        """Any failure inside gains the notebook's DOM, the browser console and JupyterLab's log; a screenshot and the
        whole DOM are kept as `name`-failure.png / .html next to the other screenshots."""
        try: yield self
        except Exception as e:   # pytest's skip and fail are BaseExceptions: they pass through
            self.shots.mkdir(parents=True, exist_ok=True)
            kept = []
            with contextlib.suppress(Exception):
                self.driver.save_screenshot(str(self.shots / f"{name}-failure.png")); kept.append(f"{name}-failure.png")
            try: dom = self.dom()
            except Exception as d: dom = f"(no DOM: {d!r})"
            with contextlib.suppress(Exception):
                (self.shots / f"{name}-failure.html").write_text(self.driver.page_source); kept.append(f"{name}-failure.html")
            why = str(e) if isinstance(e, AssertionError) else f"{type(e).__name__}: {e}"
            raise AssertionError(f"{why}\n--- kept under {self.shots}: {', '.join(kept) or 'nothing'}"
                                 f"\n--- the notebook's DOM (end)\n{dom[-6000:]}\n--- browser console\n{self.console()}"
                                 f"\n--- JupyterLab's log (end)\n{self.lab.log_tail()}") from e

    # -- the notebook ---------------------------------------------------------------------------------------
    def open(self) -> Page:
        "Open the notebook in JupyterLab and wait until its kernel has started and is idle."
        self.driver.get(f"{self.lab.url}/lab/tree/{self.notebook}?token={TOKEN}")
        self.wait(lambda: self.driver.find_elements(By.CSS_SELECTOR, ".jp-NotebookPanel .jp-Cell"), "the notebook's cells",
                  timeout=180)
        self.wait(lambda: self.kernel_status() == "idle", "the notebook's kernel to start", timeout=240)
        return self

    def kernel_status(self) -> str | None:
        return self.driver.execute_script(
            "const w = window.jupyterapp && window.jupyterapp.shell.currentWidget;"
            "const k = w && w.sessionContext && w.sessionContext.session && w.sessionContext.session.kernel;"
            "return k ? k.status : null;")

    def menu(self, *path: str) -> None:
        "Click through JupyterLab's menu bar: menu('Run', 'Run All Cells') (a trailing '…' of an item's label is ignored)."
        top = self.wait(lambda: [m for m in self.driver.find_elements(By.CSS_SELECTOR, ".lm-MenuBar-item")
                                 if m.text.strip() == path[0]], f"the {path[0]!r} menu")
        top[0].click()
        for label in path[1:]:
            item = self.wait(lambda: [m for m in self.driver.find_elements(By.CSS_SELECTOR, ".lm-Menu .lm-Menu-item")
                                      if m.find_element(By.CSS_SELECTOR, ".lm-Menu-itemLabel").text.strip().rstrip("….") == label
                                      and m.is_displayed()], f"the menu item {label!r}")
            item[0].click()

    def confirm(self, timeout: float = 5) -> bool:
        "Accept the dialog JupyterLab shows (e.g. 'Shut down the kernel?'), if one comes within `timeout` s."
        with contextlib.suppress(AssertionError):
            self.wait(lambda: self.find(".jp-Dialog .jp-mod-accept"), "a dialog", timeout=timeout)[0].click()
            return True
        return False

    def cells(self) -> list[dict]:
        "Each code cell's prompt ('[3]:', '[*]:' while running, '[ ]:' never run) and error outputs."
        return self.driver.execute_script("""
            const panel = document.querySelector('.jp-NotebookPanel:not(.lm-mod-hidden)');
            return [...panel.querySelectorAll('.jp-CodeCell')].map(c => ({
              prompt: (c.querySelector('.jp-InputArea-prompt') || {}).textContent || '',
              errors: [...c.querySelectorAll('.jp-OutputArea-output[data-mime-type="application/vnd.jupyter.stderr"]')]
                        .map(o => o.textContent).filter(t => /Traceback|Error/.test(t)).map(t => t.slice(-1500))}));""")

    def run_all(self, timeout: float = 600) -> Page:
        "Run → Run All Cells, then wait until every code cell has run and the kernel is idle; fail on an error output."
        self.menu("Run", "Run All Cells")
        def done():
            cells = self.cells()
            if any(c["errors"] for c in cells): return True   # run-all stops at an error: say which below
            return self.kernel_status() == "idle" and all(re.fullmatch(r"\[\d+\]:", c["prompt"].strip()) for c in cells)
        self.wait(done, "every cell to run and the kernel to go idle", timeout=timeout, poll=1)
        errors = [(i, c["errors"]) for i, c in enumerate(self.cells()) if c["errors"]]
        assert not errors, f"cells failed: " + "\n".join(f"cell {i}:\n{e[-1]}" for i, e in errors)
        return self

    # -- finding widgets ------------------------------------------------------------------------------------
    def find(self, css: str, within=None) -> list:
        return (within or self.driver).find_elements(By.CSS_SELECTOR, css)

    def widget(self, description: str, within=None):
        """The control whose description (its label) is `description`: a slider, text box, dropdown... For a box
        without a description, its placeholder; for a button, its text."""
        def found():
            for box in self.find(".jp-OutputArea-output .widget-inline-hbox", within):
                labels = self.find(":scope > .widget-label", box)
                if labels and labels[0].text.strip() == description: return box
            for el in self.find(".jp-OutputArea-output input, .jp-OutputArea-output textarea", within):
                if el.get_attribute("placeholder") == description: return el
            for el in self.find(".jp-OutputArea-output button.jupyter-button", within):
                if el.text.strip() == description: return el
        return self.wait(found, f"a widget described {description!r}")

    def image(self, label: str, within=None):
        "The picture (an ipywidgets Image) shown under the label `label` (a `Label` widget in the same box)."
        def found():
            for el in self.find(".jp-OutputArea-output .widget-label", within):
                if el.text.strip() == label:
                    pics = el.find_elements(By.XPATH, "following-sibling::img[contains(@class, 'widget-image')]")
                    if pics: return pics[0]
        return self.wait(found, f"a picture labelled {label!r}")

    def images(self, within=None) -> list:
        return self.find(".jp-OutputArea-output img.widget-image", within)

    def html_text(self, css: str = ".widget-html-content", within=None) -> list[str]:
        "The text (whitespace collapsed) of the HTML widgets (or other elements) matching `css`."
        return [" ".join(e.get_attribute("textContent").split()) for e in self.find(f".jp-OutputArea-output {css}", within)]

    # -- acting on them, as a person does -------------------------------------------------------------------
    def slider_value(self, description: str) -> int:
        box = self.widget(description)
        return int(self.find(".widget-readout", box)[0].text.strip())

    def drag_slider(self, description: str, steps: int) -> int:
        "Drag the slider's handle `steps` positions right (left when negative) with the pointer; its new value."
        box = self.widget(description)
        before = self.slider_value(description)
        track, handle = self.find(".noUi-base, .noUi-target", box)[0], self.find(".noUi-handle", box)[0]
        lo, hi = (round(float(handle.get_attribute(a))) for a in ("aria-valuemin", "aria-valuemax"))
        width = track.size["width"] if track.size["width"] else 1
        dx = round(steps * width / max(hi - lo, 1))
        self.scroll_to(handle)
        ActionChains(self.driver).click_and_hold(handle).pause(0.2).move_by_offset(dx // 2, 0).pause(0.1) \
            .move_by_offset(dx - dx // 2, 0).pause(0.2).release().perform()
        want = min(max(before + steps, lo), hi)
        self.wait(lambda: self.slider_value(description) == want, f"the {description!r} slider to read {want}")
        return want

    def set_slider(self, description: str, value: int) -> None:
        "Type `value` into the slider's readout and press Enter (the readout is editable, as a person may use it)."
        box = self.widget(description)
        readout = self.find(".widget-readout", box)[0]
        self.scroll_to(readout)
        readout.click()
        readout.send_keys(Keys.CONTROL, "a")
        readout.send_keys(str(value), Keys.ENTER)
        self.wait(lambda: self.slider_value(description) == value, f"the {description!r} slider to read {value}")

    def type(self, description: str, text: str, enter: bool = True) -> None:
        "Click the text box described `description` (or with that placeholder), type `text` and press Enter."
        el = self.widget(description)
        if el.tag_name not in ("input", "textarea"): el = self.find("input, textarea", el)[0]
        self.scroll_to(el)
        el.click()
        el.send_keys(Keys.CONTROL, "a")
        el.send_keys(text, *([Keys.ENTER] if enter else []))

    def click(self, text: str) -> None:
        "Click the button reading `text`."
        button = self.widget(text)
        self.scroll_to(button)
        button.click()

    def scroll_to(self, el, where: str = "center") -> None:
        self.driver.execute_script("arguments[0].scrollIntoView({block: arguments[1]});", el, where)

    def image_bytes(self, img) -> bytes:
        """The bytes the picture shows: its `src` (a blob: or data: URL of the widget's PNG) fetched in the page.
        The widget revokes a picture's blob URL when a new picture replaces it; a fetch that loses that race
        is asked again with the new `src`."""
        self.driver.set_script_timeout(30)
        for _ in range(5):
            src = img.get_attribute("src")
            b64 = self._fetch_base64(src)
            if not b64.startswith("ERROR") or img.get_attribute("src") == src: break
        assert not b64.startswith("ERROR"), f"could not read the picture at {src[:80]}: {b64}"
        return base64.b64decode(b64)

    def _fetch_base64(self, src: str) -> str:
        return self.driver.execute_async_script("""
            const done = arguments[arguments.length - 1];
            fetch(arguments[0]).then(r => r.arrayBuffer()).then(buf => {
              const bytes = new Uint8Array(buf); let s = '';
              for (let i = 0; i < bytes.length; i += 0x8000) s += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
              done(btoa(s));
            }).catch(e => done('ERROR ' + e));""", src)

    # -- what a person sees ---------------------------------------------------------------------------------
    def shown_size(self, img) -> tuple[tuple[int, int], tuple[int, int]]:
        "((width, height) of the picture's pixels, (width, height) it takes on the screen, in CSS pixels)."
        n = self.driver.execute_script("const i = arguments[0]; return [i.naturalWidth, i.naturalHeight, "
                                       "i.getBoundingClientRect().width, i.getBoundingClientRect().height];", img)
        return (n[0], n[1]), (round(n[2]), round(n[3]))

    def assert_connected(self) -> None:
        "No widget shows the broken-link (disconnected) icon or an error placeholder instead of its view."
        disconnected = self.find(DISCONNECTED)
        assert not disconnected, f"{len(disconnected)} widget view(s) carry the disconnected icon ({DISCONNECTED})"
        text = " ".join(e.get_attribute("textContent") for e in self.find(".jp-OutputArea-output"))
        broken = [t for t in BROKEN_TEXT if t in text]
        assert not broken, f"widget outputs read {broken}"
        assert self.kernel_status() in ("idle", "busy"), f"the kernel is {self.kernel_status()}"

    def screenshot(self, name: str, of=None) -> Path:
        "Check the widgets are connected, then keep a screenshot (scrolled to `of` when given) as `name`.png."
        if of is not None: self.scroll_to(of, "start")
        self.assert_connected()
        self.shots.mkdir(parents=True, exist_ok=True)
        shot = self.shots / f"{name}.png"
        time.sleep(0.3)   # let the last change paint
        self.driver.save_screenshot(str(shot))
        assert shot.stat().st_size > 10_000, f"{shot}: an empty screenshot"
        return shot


@contextlib.contextmanager
def notebook_in_lab(folder: Path, notebook: str, name: str, home: Path | None = None):
    "JupyterLab serving `folder`, `notebook` (a path in it) open in headless Chromium: the `Page`, inside `diagnose`."
    with JupyterLab(folder, home) as lab:
        driver = browser()
        try:
            page = Page(lab, driver, notebook)
            with page.diagnose(name): yield page
        finally:
            driver.quit()
