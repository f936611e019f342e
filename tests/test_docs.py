"""The docs site: built offline from nbs/ with tools/build_docs.py, every internal link resolves, only show_doc
entries look like API entries, source links point at real files and lines of this checkout, outputs name no
temporary folder, the build log is one line per page, and a real headless Chromium renders the landing page, API
pages and a tutorial (titles, signatures, images decoded) -- screenshots are kept under build/docs/screenshots/."""
import functools
import html
import html.parser
import http.server
import importlib.util
import json
import re
import shutil
import subprocess
import threading
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest

from conftest import BIN, ROOT, run

SHOTS = ROOT / "build" / "docs" / "screenshots"
BUILD = {}          # the site fixture's build: its log


def build_docs():
    "tools/build_docs.py as a module (its page names and path rules)."
    spec = importlib.util.spec_from_file_location("build_docs", ROOT / "tools" / "build_docs.py")
    mod = importlib.util.module_from_spec(spec); spec.loader.exec_module(mod)
    return mod


def chromium() -> str:
    "The system Chromium, installed from Debian's packages when missing (CI starts without it)."
    for name in ("chromium", "chromium-browser"):
        if path := shutil.which(name): return path
    apt = ["apt-get", "install", "-y", "--no-install-recommends", "chromium"]
    p = subprocess.run(["apt-get", "update"], capture_output=True, text=True)
    p = subprocess.run(apt, capture_output=True, text=True, env={"DEBIAN_FRONTEND": "noninteractive", "PATH": "/usr/sbin:/usr/bin:/sbin:/bin"})
    assert p.returncode == 0 and shutil.which("chromium"), f"could not install Debian's chromium: {' '.join(apt)}\n{p.stderr[-2000:]}"
    return shutil.which("chromium")


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    out = tmp_path_factory.mktemp("site")
    work = tmp_path_factory.mktemp("docwork")
    # A module notebook and a tutorial executed (their pictures on the page); the others as committed -- their cells
    # already run in test_notebooks.py -- with their show_doc entries, which executes each notebook's exported cells
    # (real_geneva_data: temporary folders, the private data root and a papermill kernel in one short notebook)
    p = run([str(BIN / "python"), "tools/build_docs.py",
             "--exec", "20_synth.iclevr.ipynb,tutorials/read_a_run.ipynb,tutorials/real_geneva_data.ipynb",
             "--out", str(out),
             "--work", str(work)], timeout=900)
    BUILD.update(log=p.stdout + p.stderr, work=work)
    return out


class Links(html.parser.HTMLParser):
    def __init__(self):
        super().__init__(); self.links, self.ids = [], set()

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if "id" in a: self.ids.add(a["id"])
        for key in ("href", "src"):
            if a.get(key) and tag in ("a", "img", "link", "script"): self.links.append(a[key])


def test_every_internal_link_resolves(site):
    pages = sorted(site.rglob("*.html"))
    assert len(pages) >= 15, [p.name for p in pages]
    parsed = {}
    for page in pages:
        parsed[page] = p = Links(); p.feed(page.read_text(errors="replace"))
    broken = []
    for page, p in parsed.items():
        for link in p.links:
            u = urlsplit(link)
            if u.scheme or u.netloc or link.startswith(("mailto:", "javascript:", "data:")): continue
            base = site if u.path.startswith("/") else page.parent        # 404.html links from the site root
            target = (base / unquote(u.path).lstrip("/")).resolve() if u.path else page
            if target.is_dir(): target = target / "index.html"
            if not target.exists(): broken.append(f"{page.relative_to(site)} -> {link}"); continue
            if u.fragment and target.suffix == ".html" and target in parsed and u.fragment not in parsed[target].ids:
                broken.append(f"{page.relative_to(site)} -> {link} (no such anchor)")
    assert not broken, "\n".join(broken[:40])
    # sections of the navigation, and no request off the machine from any page
    index = (site / "index.html").read_text()
    for section in ("Data", "Models", "Engine", "Jobs", "Metrics"): assert f">{section}<" in index.replace("\n", "").replace(" ", "") or section in index
    offsite = [str(pg.relative_to(site)) for pg in pages if "fonts.googleapis" in pg.read_text(errors="replace")]
    assert not offsite, offsite


HARNESS = """<!doctype html><meta charset="utf-8"><title>check</title><pre id="result">pending</pre>
<iframe id="f" src="{page}" width="1280" height="1600"></iframe>
<script>
document.getElementById('f').onload = () => {{
  const d = document.getElementById('f').contentDocument;
  const imgs = [...d.images];
  const wait = imgs.map(i => i.complete ? Promise.resolve() : new Promise(r => {{ i.onload = i.onerror = r; }}));
  Promise.all(wait).then(() => {{
    document.getElementById('result').textContent = JSON.stringify({{
      title: d.title, h1: (d.querySelector('h1') || {{}}).textContent || '',
      images: imgs.length, decoded: imgs.filter(i => i.naturalWidth > 0 && i.naturalHeight > 0).length,
      signatures: [...d.querySelectorAll('pre code, code')].filter(c => /def |class /.test(c.textContent)).length,
      text: d.body.innerText.length }});
  }});
}};
</script>"""


@pytest.fixture(scope="module")
def served(site):
    (site / "_check.html").write_text("")   # placeholder; each check rewrites it
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(site))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield site, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


@pytest.mark.parametrize("page,expect", [("index.html", "drawlab"), ("systems.lattegan.html", "train_lattegan"),
                                         ("synth.iclevr.html", "make_iclevr"), ("tutorials/read_a_run.html", "Read a run")])
def test_pages_render_in_chromium(served, page, expect):
    site, url = served
    browser = chromium()
    (site / "_check.html").write_text(HARNESS.format(page=page))
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--virtual-time-budget=15000"]
    for attempt in range(2):   # a loaded machine can run out the virtual-time budget once; a second try is the check
        dom = subprocess.run([browser, *flags, "--dump-dom", f"{url}/_check.html"], capture_output=True, text=True, timeout=120)
        start, end = dom.stdout.find('<pre id="result">') + len('<pre id="result">'), dom.stdout.find("</pre>")
        result = json.loads(html.unescape(dom.stdout[start:end])) if dom.stdout[start:end].startswith("{") else None
        if result: break
    assert result, f"{page}: the page did not finish loading in Chromium\n{dom.stderr[-2000:]}"
    assert expect in result["title"] + result["h1"] or result["signatures"] > 0, result
    assert result["text"] > 500, result
    tutorial = page.startswith("tutorials/")
    if page != "index.html" and not tutorial: assert result["signatures"] > 0, result   # API entries with signatures
    if page == "synth.iclevr.html" or tutorial: assert result["decoded"] > 0, result     # a picture, decoded, non-zero size
    SHOTS.mkdir(parents=True, exist_ok=True)
    shot = SHOTS / page.replace("/", "_").replace(".html", ".png")
    subprocess.run([browser, *flags, "--window-size=1280,1600", f"--screenshot={shot}", f"{url}/{page}"],
                   capture_output=True, timeout=120)
    assert shot.exists() and shot.stat().st_size > 20_000, shot


def pages_of(site: Path) -> dict[str, str]:
    "Each built page of a notebook (`core.html`, `tutorials/quickstart.html`) and its HTML."
    return {str(p.relative_to(site)): p.read_text(errors="replace") for p in sorted(site.rglob("*.html"))
            if p.name not in ("404.html", "_check.html")}


def _plain(fragment: str) -> str: return html.unescape(re.sub(r"<[^>]+>", "", fragment)).replace("\u00b6", "").strip()


_HEADING = re.compile(r'<h([2-6])(?: class="([^"]*)")?[^>]*>(.*?)</h\1>', re.S)
_ENTRY = re.compile(r'<hr />\s*(?:<p><a class="doc-source"[^>]*>source</a></p>\s*)?$')


def test_only_show_doc_entries_look_like_api_entries(site):
    "A heading with the API style opens a show_doc entry (rule, source link, signature); prose headings are prose."
    bd = build_docs()
    notebooks = {str(Path(bd.page_path(rel)).with_suffix(".html")): nb
                 for nb in (ROOT / "nbs").rglob("*.ipynb") if not (rel := str(nb.relative_to(ROOT / "nbs"))).startswith(("_", "."))}
    wrong, entries = [], 0
    for name, text in pages_of(site).items():
        nondoc = {}
        for m in _HEADING.finditer(text):
            if "doc-heading" in (m.group(2) or ""):
                entries += 1
                opens_entry = _ENTRY.search(text[:m.start()].rstrip()[-600:] + "\n")
                signature = text[m.end():].lstrip().startswith('<div class="language-python highlight">')
                if not (opens_entry and signature): wrong.append(f"{name}: '{_plain(m.group(3))}' is styled as an API entry")
            else: nondoc[_plain(m.group(3))] = nondoc.get(_plain(m.group(3)), 0) + 1
        # the one-word prose headings of the notebook (the shape a page-wide rule would take for a name) stay prose
        nb = notebooks.get(name)
        if nb is None: continue
        prose = {}
        for cell in json.loads(nb.read_text())["cells"]:
            if cell["cell_type"] != "markdown": continue
            src = re.sub(r"^```.*?^```", "", "".join(cell["source"]), flags=re.S | re.M)
            for h in re.findall(r"^#{2,6} ([A-Za-z_][\w.]*)\s*$", src, re.M): prose[h] = prose.get(h, 0) + 1
        wrong += [f"{name}: prose heading '{h}' is styled as an API entry" for h, n in prose.items() if nondoc.get(h, 0) < n]
    assert entries > 100, f"only {entries} API entries on the site"
    assert not wrong, "\n".join(wrong[:40])


def test_source_links_point_at_this_checkout(site):
    "Every source link goes to the configured repository and branch, at a file git tracks and the line defining it."
    tomllib = pytest.importorskip("tomllib")
    cfg = tomllib.loads((ROOT / "pyproject.toml").read_text())
    base = f"{cfg['project']['urls']['Repository'].rstrip('/')}/blob/{cfg['tool']['nbdev'].get('branch', 'main')}/"
    tracked = set(subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True).stdout.splitlines())
    bad, n = [], 0
    for name, text in pages_of(site).items():
        for m in re.finditer(r'<a class="doc-source" href="([^"]+)"[^>]*>source</a></p>\s*<h[2-6][^>]*>(.*?)</h', text, re.S):
            n += 1
            url, entry = html.unescape(m.group(1)), _plain(m.group(2))
            if not url.startswith(base): bad.append(f"{name}: {entry}: {url} is not in {base}"); continue
            path, _, line = url[len(base):].partition("#L")
            if tracked and path not in tracked or not (ROOT / path).is_file():
                bad.append(f"{name}: {entry}: {path} is not a file of the repository"); continue
            lines = (ROOT / path).read_text().splitlines()
            short = entry.rsplit(".", 1)[-1]
            if line and not (line.isdigit() and 1 <= int(line) <= len(lines)
                             and re.match(rf"\s*(async\s+)?(def|class)\s+{re.escape(short)}\b", lines[int(line) - 1])):
                bad.append(f"{name}: {entry}: {path} line {line} does not define {short}")
        # no other link into the repository's files that the check above did not see
        for url in re.findall(r'href="(' + re.escape(base) + r'[^"]*)"', text):
            path = html.unescape(url)[len(base):].partition("#")[0]
            if not (ROOT / path).exists(): bad.append(f"{name}: {url}: no such path in the checkout")
    assert n > 100, f"only {n} source links on the site"
    assert not bad, "\n".join(bad[:40])


def test_outputs_name_no_temporary_folder(site):
    "Outputs show `data/`, `outputs/`, `scratch/` or project-relative paths, never the folders of the machine that built them."
    temp, work = build_docs().TEMP_PATH, str(BUILD["work"])
    found, outputs = [], 0
    for name, text in pages_of(site).items():
        outputs += len(re.findall(r'class="[^"]*\b(?:nb-output|nb-html)\b', text))
        # everything but the code cells (a cell may name /tmp on purpose) and the page's navigation
        body = re.sub(r'<div class="language-python highlight">.*?</div>', "", text, flags=re.S)
        body = _plain(body[body.find('<article'):body.find('</article>')])
        for rx in (temp, re.compile(re.escape(work)), re.compile(re.escape(str(ROOT)) + r"\b")):
            found += [f"{name}: ...{body[max(0, m.start() - 80):m.end() + 80]}..." for m in rx.finditer(body)]
    assert outputs > 5, f"only {outputs} outputs on the site"
    assert not found, "\n".join(found[:40])
    assert "scratch/data/iCLEVR" in (site / "tutorials" / "real_geneva_data.html").read_text()   # its temporary folder


def test_tutorials_front_matter_and_quiet_log(site):
    "A tutorial's `- order: N` is front matter, not a bullet; the build log is one line per notebook plus problems."
    for page in (site / "tutorials").glob("*.html"):
        assert not re.search(r"<li>\s*order:\s*\d+\s*</li>", page.read_text()), page.name
    log = BUILD["log"]
    for noise in ("Kernel is running over TCP", "Found cells containing imports", "Material for MkDocs reaches end of life"):
        assert noise not in log, f"{noise!r} in the build log:\n{log[-3000:]}"
    stray = [l for l in log.splitlines() if l.strip() and not l.startswith("[docs]")]
    assert not stray, "\n".join(stray[:20])


def nav_sections(site) -> dict[str, list[str]]:
    "The navigation as the build wrote it: section -> the pages (Markdown names) in it."
    import yaml
    nav = yaml.safe_load((BUILD["work"] / "mkdocs.yml").read_text().split("\n", 1)[1])["nav"]
    flat = {}
    for entry in nav:
        (sec, items), = entry.items()
        flat[sec] = [items] if isinstance(items, str) else [next(iter(i.values())) for i in items]
    return flat


def test_navigation_links_the_reader_in(site):
    """The landing page links every tutorial and every module of the layer table; the papermill jobs have a section of
    their own (apart from the engine's modules) and say how to run them; an Installation page and an API index exist."""
    index = Links(); index.feed((site / "index.html").read_text())
    for target in ("tutorials/installation.html", "tutorials/quickstart.html", "tutorials/read_a_run.html",
                   "tutorials/draw_with_lattegan.html", "tutorials/real_geneva_data.html", "core.html",
                   "data.geneva.html", "models.lattegan.html", "train.html", "runs.html", "apps.draw.html"):
        assert any(urlsplit(l).path == target for l in index.links), f"the landing page does not link {target}"
    nav = nav_sections(site)
    jobs = sorted(f"{p.stem}.md" for p in (ROOT / "nbs").glob("*.ipynb") if re.match(r"(train|pretrain|create)_", p.name))
    assert "train_lattegan.md" in jobs and sorted(nav["Jobs"]) == jobs, nav["Jobs"]
    assert {"core.md", "train.md", "runs.md"} <= set(nav["Engine"]) and not any(p.startswith("train_") for p in nav["Engine"])
    assert nav["Tutorials"][0] == "tutorials/installation.md"
    job = (site / "train_lattegan.html").read_text()
    text = html.unescape(re.sub(r"<[^>]+>", "", job))   # the command is highlighted token by token
    assert "A job: run it with papermill" in text and "papermill nbs/train_lattegan.ipynb" in text
    assert "A job: run it with papermill" not in (site / "train.html").read_text()
    for page, picture in (("tutorials/draw_with_lattegan.html", "images/draw_app.png"),
                          ("tutorials/caption_to_image.html", "images/caption_app.png"),
                          ("tutorials/semantic_pyramid_editing.html", "images/pyramid_app.png"),
                          ("tutorials/spoken_words.html", "images/spoken_app.png"),
                          ("data.geneva.html", "images/episode_browser.png")):
        assert f'src="{picture}"' in (site / page).read_text(), f"{page} does not show {picture}"
        assert (site / page).parent.joinpath(picture).is_file()


def test_api_index_lists_every_exported_function_and_class(site):
    import importlib
    import inspect
    from lib import _modidx
    api = Links(); api.feed((site / "api_index.html").read_text())
    listed = {unquote(urlsplit(l).fragment) for l in api.links if urlsplit(l).fragment}
    missing = []
    for mod in sorted(_modidx.d["syms"]):
        m = importlib.import_module(mod)   # its functions and classes (constants get no show_doc entry)
        names = [n for n in getattr(m, "__all__", []) if inspect.isfunction(getattr(m, n)) or inspect.isclass(getattr(m, n))]
        missing += [f"{mod}.{n}" for n in names if n.lower() not in listed]
    assert not missing, f"exported but not in the API index: {missing}"


def test_doc_build_reruns_only_import_cells():
    """nbdev's doc processor re-runs, in a fresh shell, every cell of a documented notebook that contains an import
    (its `exec_show_docs`): such a cell must hold imports only, else its work runs twice and without the state the
    cells between them built (a temporary folder made again, a file the skipped cells wrote missing)."""
    import ast
    bad = []
    for nb in sorted((ROOT / "nbs").rglob("*.ipynb")):
        if ".ipynb_checkpoints" in nb.parts: continue
        cells = [c for c in json.loads(nb.read_text())["cells"] if c["cell_type"] == "code"]
        sources = ["".join(c["source"]) for c in cells]
        if not any(re.search(r"^#\|\s*export|show_doc\(", s, re.M) for s in sources): continue   # nbdev adds no docs
        for i, src in enumerate(sources):
            if re.search(r"^#\|\s*(export|exports|exporti|exec_doc|eval:\s*false)", src, re.M | re.I) or "nbdev_export()" in src:
                continue
            try: tree = ast.parse("\n".join(l for l in src.splitlines() if not l.lstrip().startswith(("%", "!"))))
            except SyntaxError: continue
            has_import = any(isinstance(n, (ast.Import, ast.ImportFrom)) for n in ast.walk(tree))
            if has_import and not all(isinstance(n, (ast.Import, ast.ImportFrom)) for n in tree.body):
                bad.append(f"{nb.relative_to(ROOT)} code cell {i}: {src.splitlines()[0][:70]!r}")
    assert not bad, "cells that mix imports with other code (put the imports in a cell of their own):\n" + "\n".join(bad)
