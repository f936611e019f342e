"""The docs site: built offline from nbs/ with tools/build_docs.py, every internal link resolves, and a real
headless Chromium renders the landing page, API pages and a tutorial (titles, signatures, images decoded) --
screenshots are kept under build/docs/screenshots/."""
import functools
import html.parser
import http.server
import json
import shutil
import subprocess
import threading
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest

from conftest import BIN, ROOT, run

SHOTS = ROOT / "build" / "docs" / "screenshots"


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
    run([str(BIN / "python"), "tools/build_docs.py", "--exec", "20_synth.iclevr.ipynb,tutorials/read_a_run.ipynb",
         "--out", str(out),
         "--work", str(work)], timeout=900)
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
    for section in ("Data", "Models", "Training", "Metrics"): assert f">{section}<" in index.replace("\n", "").replace(" ", "") or section in index
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
    dom = subprocess.run([browser, *flags, "--dump-dom", f"{url}/_check.html"], capture_output=True, text=True, timeout=120)
    start, end = dom.stdout.find('<pre id="result">') + len('<pre id="result">'), dom.stdout.find("</pre>")
    result = json.loads(html.unescape(dom.stdout[start:end])) if dom.stdout[start:end].startswith("{") else None
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
