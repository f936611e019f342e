"""Build drawlab's documentation site from `nbs/`, offline, without Quarto.

    python tools/build_docs.py [--out _docs] [--jobs 2] [--only GLOB] [--no-exec] [--keep-going] [--serve]

(`./drawlab docs` runs this after the usual set-up.) The steps:

1. **Execute** every documented notebook the way `nbdev-test` does (same skipped flags, cwd = the notebook's folder,
   private `data/` and `outputs/` roots), so pictures, tables and printed results are on the page. Results are
   cached under `build/docs/proc/`, keyed by the notebook, the exported package and this script, so a rebuild
   after editing one notebook re-runs that notebook only (a change to `lib/` re-runs all of them). Outputs name
   those private roots `data/` and `outputs/`, temporary folders `scratch/` and the checkout's own paths relative
   to it, so no page shows a path of the machine that built it.
2. **Process** the executed notebook with nbdev's own documentation processors (`nbdev.processors.FilterDefaults`,
   what `nbdev-proc-nbs` applies before Quarto renders): hidden and exported cells go, a `show_doc` cell is
   added and executed for every exported name, backticked names in prose become links to their API entries.
3. **Convert** each processed notebook to a Markdown page (show_doc output stays Markdown, images become files,
   nbdev's absolute doc links become relative links checked against the anchors that really exist). Only show_doc
   output gets the API-entry style; its source link is rebuilt from the repository in `pyproject.toml`
   (`[project.urls] Repository`, `[tool.nbdev] branch`) and kept only when its file and line exist in the
   checkout -- any other is dropped and reported.
4. **Render** with MkDocs + Material (`mkdocs.yml` at the project root): navigation by section, search, light
   and dark themes; `mkdocs build --strict` fails on any broken internal link or anchor.

A page's section comes from its notebook's name (`NN_area.topic.ipynb`, see `SECTIONS`) or folder
(`tutorials/`), so adding a module or a tutorial is adding one notebook. Tutorials are ordered by an optional
`- order: N` line in their title cell, then by name. `nbdev-docs` (Quarto) keeps working on machines with Quarto:
this script reads nbdev's configuration and writes nothing into `nbs/` or `_proc/`. Its log is one line per
notebook plus real problems (known noise -- nbdev's warning that prints a whole cell, the TCP warning of the kernels
papermill starts, Material's end-of-life banner -- is silenced).
"""
from __future__ import annotations

import argparse
import base64
import concurrent.futures as cf
import fnmatch
import hashlib
import json
import multiprocessing as mp
import os
import re
import shutil
import subprocess
import sys
import time
import traceback
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
WORK = ROOT / "build" / "docs"          # git-ignored: executed/processed notebooks, Markdown pages, screenshots
ASSETS = ROOT / "docs"                  # static files copied into the site (stylesheet)
VERSION = "1"                           # bump to invalidate every cached notebook when the pipeline changes

# Page sections, first match wins: (section, regex on the notebook's path relative to nbs/). Module notebooks are
# `NN_area.topic.ipynb`; a new area only needs a line here when its layer number below does not already place it.
SECTIONS = [
    ("Tutorials", r"^tutorials/"),
    ("Data", r"^\d+[a-z]?_(data|synth)\b"),
    ("Models", r"^\d+[a-z]?_(nn|models|systems|losses)\b"),
    ("Engine", r"^\d+[a-z]?_(core|train|runs)\b"),
    ("Jobs", r"^(train_|pretrain_|create_)"),   # the papermill notebooks: what a person runs, apart from the library
    ("Results", r"^results_"),
    ("Metrics", r"^\d+[a-z]?_metrics\b"),
    ("Apps", r"^\d+[a-z]?_apps\b"),
]
# Fallback by layer number (STYLE: 00 core, 10 data, 20 synth, 30 nn/models, 40 losses, 50 engine, 60 metrics).
LAYERS = [(10, "Engine"), (30, "Data"), (50, "Models"), (60, "Engine"), (70, "Metrics")]
SECTION_ORDER = ["Tutorials", "Data", "Models", "Engine", "Metrics", "Apps", "Jobs", "Results", "More", "API index"]
# Notebooks that nbdev's skip_file_re leaves out of the docs but that a reader wants to see, shown unexecuted:
# the parameterised training notebooks (papermill runs them; their parameters cell is the documentation).
SOURCE_ONLY = r"^(train_|pretrain_|create_)"
# Result notebooks (nbdev skips them: they read runs, not test code) are executed: they render committed summaries.
RESULTS = r"^results_"


# ------------------------------------------------------------------------------------------------ notebooks ----------
def nbdev_cfg():
    from nbdev.config import get_config
    return get_config(ROOT)


def find_notebooks(cfg) -> list[tuple[Path, bool]]:
    "(notebook, executable?) for every page: the notebooks nbdev documents (not `skip_file_re`), then the source-only ones."
    nbs = Path(cfg.nbs_path)
    skip = re.compile(cfg.get("skip_file_re") or r"^[_.]")
    found = sorted(p for p in nbs.rglob("*.ipynb")
                   if not any(part.startswith((".", "_")) for part in p.relative_to(nbs).parts[:-1]))
    docs = [p for p in found if not skip.match(p.name)]
    extra = [p for p in found if skip.match(p.name) and re.match(SOURCE_ONLY, p.name)]
    results = [p for p in found if skip.match(p.name) and re.match(RESULTS, p.name)]
    return [(p, True) for p in docs + results] + [(p, False) for p in extra]


def section_of(rel: str) -> str:
    for name, rx in SECTIONS:
        if re.search(rx, rel): return name
    m = re.match(r"^(\d+)", Path(rel).name)
    if m:
        n = int(m.group(1))
        for upper, name in LAYERS:
            if n < upper: return name
    return "More"


def page_path(rel: str) -> str:
    "nbdev's page name for a notebook (`10_data.geneva.ipynb` -> `data.geneva.md`), so nbdev's doc links fit."
    from nbdev.config import nbpath2html
    return str(nbpath2html(Path(rel)).with_suffix(".md"))


def tree_hash(*paths: Path, pattern: str = "*.py") -> str:
    h = hashlib.sha256()
    for base in paths:
        for f in sorted(base.rglob(pattern)) if base.is_dir() else [base]:
            if "__pycache__" in f.parts: continue
            h.update(str(f.relative_to(ROOT)).encode()); h.update(f.read_bytes())
    return h.hexdigest()


# ------------------------------------------------------------------------------------- execute + process ----------
def _execute(src: Path, skip_flags: list[str], env_root: Path, timeout: int):
    "Run `src`'s cells as `nbdev-test` does and return the notebook with its outputs."
    from execnb.shell import CaptureShell
    from fastcore.xtras import working_directory
    from nbdev.process import NBProcessor
    from nbdev.test import _skip_cell
    nb = NBProcessor(src, rm_directives=False, process=True).nb
    k = CaptureShell(src)
    with working_directory(src.parent):
        try: k.run_all(nb, exc_stop=True, preproc=_skip_cell(nb, skip_flags), cell_timeout=timeout)
        except BaseException as e:
            e._drawlab_tb = k.prettytb(fname=src) or traceback.format_exc()
            raise
    return nb


# Paths the build makes up, as the reader should see them: (regex, replacement), applied in order to every textual
# output. `{scratch}`, `{env}` and `{root}` are the worker's temporary root, private data/outputs root and the checkout.
SCRUB = [
    (r"{scratch}(?:/tmp[\w-]+)*", "scratch"),             # tempfile.mkdtemp() / TemporaryDirectory() folders
    (r"{env}/data\b", "data"), (r"{env}/outputs\b", "outputs"), (r"{env}\b", "."),
    (r"{root}/", ""), (r"{root}\b", "."),                  # the checkout: paths relative to it
]
# What must never reach a page: a temporary folder or a pytest one (tests/test_docs.py checks the built site too).
TEMP_PATH = re.compile(r"(?<![\w.~-])/(?:tmp|var/tmp|private/var/folders|var/folders)/|pytest-of-|/pytest-\d+/")
# Python warnings that are noise in a docs build, not problems: nbdev's "imports and other code" prints the whole cell.
QUIET_WARNINGS = [r"Found cells containing imports and other code"]


def _scrubber(scratch: Path, env: Path):
    rules = [(re.compile(rx.format(scratch=re.escape(str(scratch)), env=re.escape(str(env)), root=re.escape(str(ROOT)))), to)
             for rx, to in SCRUB]
    def scrub(text: str) -> str:
        for rx, to in rules: text = rx.sub(to, text)
        return text
    return scrub


def scrub_outputs(nb, scrub) -> None:
    "Every textual output (streams, errors, text/plain, Markdown, HTML, JSON) through `scrub`; images untouched."
    def fix(x): return scrub(x) if isinstance(x, str) else [scrub(t) for t in x] if isinstance(x, list) else x
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            if "text" in out: out["text"] = fix(out["text"])
            if "traceback" in out: out["traceback"] = fix(out["traceback"])
            if "evalue" in out: out["evalue"] = fix(out["evalue"])
            for mime, val in out.get("data", {}).items():
                if not mime.startswith("image/") or mime == "image/svg+xml": out["data"][mime] = fix(val)


def _quiet() -> None:
    "Silence the known-noise warnings and log lines in this worker and in the kernels it starts."
    import logging, warnings
    for rx in QUIET_WARNINGS: warnings.filterwarnings("ignore", message=rx)
    # ipykernel's "Kernel is running over TCP without encryption" (the kernels papermill starts): they read their
    # profile from $IPYTHONDIR, a private one here; only the kernel application's log level changes (errors show).
    profile = Path(os.environ["IPYTHONDIR"]) / "profile_default"
    profile.mkdir(parents=True, exist_ok=True)
    # jupyter_client also SIGINTs every kernel it shuts down; when that lands inside a message handler ipykernel
    # logs "KeyboardInterrupt caught in kernel." as an ERROR -- the shutdown's own race, dropped by name.
    (profile / "ipython_kernel_config.py").write_text(
        "import logging\n"
        "c.IPKernelApp.log_level = 'ERROR'\n"
        "logging.getLogger('IPKernelApp').addFilter(lambda r: 'KeyboardInterrupt caught in kernel' not in r.getMessage())\n")
    logging.getLogger("papermill").setLevel(logging.WARNING)


def build_one(src: str, dst: str, execute: bool, skip_flags: list[str], env_root: str, threads: int,
              timeout: int) -> tuple[str, float, str | None]:
    "Worker (a fresh process per executed notebook; show_doc-only ones share theirs): execute `src`, apply nbdev's doc processors, write `dst`."
    import tempfile
    t0, main = time.time(), sys.modules["__main__"]
    src_p, dst_p, env_p = Path(src), Path(dst), Path(env_root)
    scratch = env_p / "scratch"                # every temporary folder the notebook makes, so outputs can name it
    scratch.mkdir(parents=True, exist_ok=True)
    tempfile.tempdir = str(scratch)
    os.environ.update(DRAWLAB_DATA=str(env_p / "data"), DRAWLAB_OUTPUTS=str(env_p / "outputs"), IN_TEST="1",
                      TMPDIR=str(scratch), IPYTHONDIR=str(env_p / "ipython"),
                      OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads), MPLBACKEND="module://matplotlib_inline.backend_inline",
                      TQDM_MININTERVAL="5")
    _quiet()
    try:
        from fastcore.nbio import read_nb, write_nb
        from fastcore.xtras import working_directory
        from nbdev.processors import FilterDefaults
        nb = _execute(src_p, skip_flags, env_p, timeout) if execute else read_nb(src_p)
        nb.path_ = str(src_p)
        for cell in nb.cells:                      # nbdev's strip_ansi wants each stream's text as one string
            for out in cell.get("outputs", []):
                if out.get("output_type") == "stream" and isinstance(out.get("text"), list): out["text"] = "".join(out["text"])
        scrub_outputs(nb, _scrubber(scratch, env_p))
        with working_directory(src_p.parent): FilterDefaults()(nb)
        dst_p.parent.mkdir(parents=True, exist_ok=True)
        tmp = dst_p.with_suffix(".tmp")
        write_nb(nb, tmp); os.replace(tmp, dst_p)
        return src, time.time() - t0, None
    except BaseException as e:  # reported by the parent with the notebook's name
        tb = getattr(e, "_drawlab_tb", None) or traceback.format_exc()
        return src, time.time() - t0, f"{type(e).__name__}: {e}\n{tb[-4000:]}"
    finally:  # IPython's shell makes itself __main__; a shared worker finds this function there for its next notebook
        sys.modules["__main__"] = main


# ------------------------------------------------------------------------------------------- to Markdown ----------
_ANSI = re.compile(r"\x1B(?:[@-Z\\-_]|\[[0-?]*[ -/]*[@-~])")
_DIRECTIVE = re.compile(r"^\s*#\|\s*([\w-]+)\s*:?\s*(.*?)\s*$")
MAX_STREAM_LINES = 60


def _text(x) -> str: return "".join(x) if isinstance(x, list) else (x or "")


# A tqdm progress bar's line (`Writing model shards: 100%|####| 1/1 [00:00<00:00, 179.14it/s]`): timings, not results.
_PROGRESS_BAR = re.compile(r"^.*\d+%\|.*\|\s*[\d.]+[kMG]?/[\d.?]+[kMG]?\s*\[[^\]]*\]\s*$")


def _clean_stream(s: str, bars: bool = False) -> str:
    "Strip ANSI codes and replay carriage returns; with `bars`, drop progress bars (library ones included)."
    s = _ANSI.sub("", s)
    lines = [next((seg for seg in reversed(l.split("\r")) if seg), "") for l in s.split("\n")]
    if bars: lines = [l for l in lines if not _PROGRESS_BAR.match(l)]
    if len(lines) > MAX_STREAM_LINES:
        k = MAX_STREAM_LINES // 2
        lines = lines[:k] + [f"... ({len(lines) - 2 * k} more lines)"] + lines[-k:]
    return "\n".join(lines).strip("\n")


def _fence(body: str, cls: str) -> str:
    ticks = "```"
    while ticks in body: ticks += "`"
    return f"{ticks}{{ .text .{cls} }}\n{body}\n{ticks}"


def _directives(src: str) -> tuple[dict, str]:
    "Quarto directives (`#| echo: false` ...) left in by nbdev's processors, and the code without them."
    d, lines = {}, src.splitlines()
    while lines and (m := _DIRECTIVE.match(lines[0])):
        d[m.group(1)] = m.group(2).strip("'\""); lines.pop(0)
    return d, "\n".join(lines).strip("\n")


class Page:
    "One notebook as a Markdown page: text, the files it needs, the anchors it defines."
    def __init__(self, rel: str, md_rel: str, section: str):
        self.rel, self.md_rel, self.section = rel, md_rel, section
        self.title, self.order, self.md, self.files, self.anchors = "", 100, "", {}, set()
        self.api: list[str] = []               # its show_doc entries, in order (the API index lists them)
        self.problems: list[str] = []          # printed by the build, one line each

    @property
    def files_dir(self) -> str: return Path(self.md_rel).stem + "_files"


def _output_md(out: dict, page: Page, fig_cap: str | None, showdoc=None) -> str | None:
    "One output as Markdown; `showdoc` (a `SourceLinks`) when the cell is a `show_doc` call: its output is an API entry."
    kind = out.get("output_type")
    if kind == "stream":
        body = _clean_stream(_text(out.get("text")), bars=True)
        return _fence(body, "nb-output" + (" .nb-stderr" if out.get("name") == "stderr" else "")) if body.strip() else None
    if kind == "error":
        return _fence(_ANSI.sub("", "\n".join(out.get("traceback", [])) or f"{out.get('ename')}: {out.get('evalue')}"),
                      "nb-output .nb-error")
    data = out.get("data", {})
    if "text/markdown" in data:
        md = _text(data["text/markdown"]).strip()
        return anchor_showdoc(md, page, showdoc) if showdoc else md
    for mime, ext in (("image/png", "png"), ("image/jpeg", "jpg"), ("image/gif", "gif")):
        if mime in data:
            name = f"{page.files_dir}/output-{len(page.files) + 1}.{ext}"
            page.files[name] = base64.b64decode(_text(data[mime]))
            alt = (fig_cap or "output").replace("]", "")
            img = f"![{alt}]({name})"
            return img + (f"\n{{ .nb-figure }}\n\n{fig_cap}\n{{ .nb-caption }}" if fig_cap else "\n{ .nb-figure }")
    if "image/svg+xml" in data:
        name = f"{page.files_dir}/output-{len(page.files) + 1}.svg"
        page.files[name] = _text(data["image/svg+xml"]).encode()
        return f"![{fig_cap or 'output'}]({name})\n{{ .nb-figure }}"
    if "application/vnd.jupyter.widget-view+json" in data:
        return ('!!! tip "Interactive widget"\n    This cell shows an ipywidgets control: run the notebook in JupyterLab '
                '(`./drawlab lab`) to use it.')
    if "text/html" in data:
        html = _text(data["text/html"]).strip()
        return f'<div class="nb-html" markdown="0">\n{html}\n</div>'
    if "text/plain" in data:
        body = _clean_stream(_text(data["text/plain"]))
        return _fence(body, "nb-output") if body.strip() else None
    return None


def _merge_streams(outs: list) -> list:
    "Consecutive writes to one stream as one output, so a progress bar's carriage returns replay across them."
    merged = []
    for out in outs:
        prev = merged[-1] if merged else None
        if (prev and out.get("output_type") == "stream" and prev.get("output_type") == "stream"
                and prev.get("name") == out.get("name")):
            merged[-1] = {**prev, "text": _text(prev.get("text")) + _text(out.get("text"))}
        else: merged.append(out)
    return merged


_SHOWDOC_CALL = re.compile(r"^\s*show_doc\(", re.M)
_ORDER_LINE = re.compile(r"^\s*[-*] order:\s*\d+\s*$\n?", re.M)   # a tutorial's `- order: N`, should nbdev leave it


def notebook_to_page(nb: dict, page: Page, source_note: str, links: "SourceLinks") -> None:
    cells = nb["cells"]
    fm = {}
    if cells and cells[0]["cell_type"] == "raw" and _text(cells[0]["source"]).lstrip().startswith("---"):
        import yaml
        fm = yaml.safe_load(_text(cells.pop(0)["source"]).strip().strip("-")) or {}
    page.title = str(fm.get("title") or Path(page.rel).stem)
    page.order = int(fm.get("order", 100))
    desc = str(fm.get("description") or "").strip()
    parts = [f"---\ntitle: {json.dumps(page.title)}\n" + (f"description: {json.dumps(desc)}\n" if desc else "") + "---",
             f"# {page.title}"]
    if desc: parts.append(f"{desc}\n{{ .nb-lead }}")
    if source_note: parts.append(source_note)
    for cell in cells:
        src = _text(cell.get("source"))
        if cell["cell_type"] == "markdown":
            src = _ORDER_LINE.sub("", src)
            if src.strip() and not src.strip().startswith("<!-- WARNING: THIS FILE WAS AUTOGENERATED"): parts.append(src.strip())
            continue
        if cell["cell_type"] == "raw":
            continue
        d, code = _directives(src)
        outs = [] if d.get("output") == "false" else _merge_streams(cell.get("outputs", []))
        showdoc = links if _SHOWDOC_CALL.search(code) else None
        block = []
        if code and d.get("echo") != "false":
            fenced = f"```python\n{code}\n```"
            if d.get("code-fold"):
                summary = d.get("code-summary", "Code")
                fenced = f'???{"+" if d["code-fold"] == "show" else ""} note "{summary}"\n' + "\n".join(
                    "    " + l if l else "" for l in fenced.splitlines())
            block.append(fenced)
        for out in outs:
            md = _output_md(out, page, d.get("fig-cap"), showdoc)
            if md and (m := TEMP_PATH.search(md)):
                page.problems.append(f"an output names a temporary folder: ...{md[max(0, m.start() - 40):m.end() + 40]!r}...")
            if md: block.append(md)
        if block: parts.append("\n\n".join(block))
    page.md = "\n\n".join(parts) + "\n"
    page.anchors |= set(re.findall(r"^#{1,6} .*?\{ #([^\s}]+)", page.md, re.M))


# show_doc headings (`### RunDir.save_params`) get nbdev's anchor (`rundir.save_params`) so nbdev's links fit, and
# the API-entry style; no other heading does (a prose `## Training` is prose).
_SHOWDOC_H = re.compile(r"^(#{2,6}) ([A-Za-z_][\w.]*)[ \t]*$", re.M)
_SRC_LINK = re.compile(r'\[source\]\((https?://[^)\s]+)\)\{target="_blank" style="float:right; font-size:smaller"\}\n*')


class SourceLinks:
    """show_doc's source links, rebuilt from the repository in `pyproject.toml` and checked against the checkout.

    nbdev writes `<git_url>/blob/<branch>/<path>#L<line>` from the settings `nbdev-export` copied into `_modidx.py`;
    here only `<path>` and `<line>` are taken from it, and the link is kept when that file exists in the checkout
    and that line defines the entry's name. Anything else is dropped and named in the page's `problems`."""
    _URL = re.compile(r"^https?://.+?/blob/[^/]+/(?P<path>[^#]+)(?:#L(?P<line>\w+))?$")

    def __init__(self, git_url: str, branch: str, root: Path = ROOT):
        self.base = f"{git_url.rstrip('/')}/blob/{branch}/" if git_url else ""
        self.root, self.kept, self.dropped, self._lines = root, 0, 0, {}

    def lines(self, path: str) -> list[str] | None:
        if path not in self._lines:
            f = (self.root / path).resolve()
            ok = f.is_file() and f.is_relative_to(self.root.resolve()) and not Path(path).is_absolute()
            self._lines[path] = f.read_text(errors="replace").splitlines() if ok else None
        return self._lines[path]

    def check(self, path: str, line: int | None, name: str) -> str | None:
        "Why `path`#L`line` is not `name`'s source in the checkout, or None."
        lines = self.lines(path)
        if lines is None: return f"{path} is not a file of the checkout"
        if line is None: return None
        if not 1 <= line <= len(lines): return f"{path} has {len(lines)} lines, not {line}"
        short = name.rsplit(".", 1)[-1]
        if not re.match(rf"\s*(?:async\s+)?(?:def|class)\s+{re.escape(short)}\b", lines[line - 1]):
            return f"{path}:{line} does not define {short}"
        return None

    def __call__(self, url: str, name: str, page: Page) -> str:
        "The Markdown for show_doc's link to `url` (entry `name`): a checked link, or nothing."
        m = self._URL.match(url)
        if not self.base: why = "no repository configured ([project.urls] Repository in pyproject.toml)"
        elif not m: why = f"not a link into a repository: {url}"
        else:
            path, line = m.group("path"), m.group("line")
            line = int(line) if line and line.isdigit() else None      # nbdev writes #LNone when it finds no line
            why = self.check(path, line, name)
        if why:
            self.dropped += 1
            page.problems.append(f"{name}: source link dropped: {why}")
            return ""
        self.kept += 1
        return f'[source]({self.base}{path}{f"#L{line}" if line else ""}){{ .doc-source target="_blank" }}\n\n'


def anchor_showdoc(md: str, page: Page, links: SourceLinks) -> str:
    "A show_doc output as an API entry: its heading styled and anchored as nbdev links it, its source link checked."
    h = _SHOWDOC_H.search(md)
    name = h.group(2) if h else ""
    if name: page.api.append(name)
    md = _SRC_LINK.sub(lambda m: links(m.group(1), name, page), md)
    return _SHOWDOC_H.sub(lambda m: f"{m.group(1)} {m.group(2)} {{ #{m.group(2).lower()} .doc-heading }}", md, count=1)


def job_note(rel: str) -> str:
    "What a papermill notebook's page says first: its cells run as a job, not in this build, and how to run one."
    stem = Path(rel).stem
    return (f'!!! note "A job: run it with papermill"\n'
            f"    This notebook runs as a job, so its cells show no output on this page. Run it from the project root\n"
            f"    (`-p name value` sets any parameter of its `parameters` cell; the same command again resumes the run):\n\n"
            f"    ```bash\n    papermill nbs/{rel} outputs/runs/my-run/{Path(rel).name} -k drawlab --cwd nbs -p run_name my-run\n    ```\n\n"
            f"    The executed copy, with every output, lands in the run folder next to its metrics and samples; the\n"
            f"    Results pages show what runs of the project's jobs produced.\n")


def api_index(pages: dict[str, Page]) -> Page:
    "A page listing every show_doc entry of the site, by module, each a link to its entry."
    page = Page("api_index", "api_index.md", "API index")
    page.title = "API index"
    lines = ["---", 'title: "API index"', "---", "# API index", "",
             "Every documented function and class, by the page of its module; each links to its entry."]
    for sec in SECTION_ORDER:
        for p in sorted((p for p in pages.values() if p.section == sec and p.api), key=lambda p: p.rel):
            lines += ["", f"## [{p.title}]({p.md_rel})", "",
                      " · ".join(f"[`{name}`]({p.md_rel}#{name.lower()})" for name in p.api)]
    page.md = "\n".join(lines) + "\n"
    return page


def relink(page: Page, pages: dict[str, Page], doc_url: str) -> int:
    """Links to pages -> relative `.md` links that MkDocs checks: nbdev's absolute doc links (an anchor that no page
    defines falls back to its class, then to the page) and relative links to notebooks (`tutorials/x.ipynb`)."""
    n = 0
    here = str(Path(page.md_rel).parent) or "."
    def to(target: Page, anchor: str | None) -> str:
        nonlocal n
        while anchor and anchor not in target.anchors:
            anchor = anchor.rsplit(".", 1)[0] if "." in anchor else None
        n += 1
        return f"]({os.path.relpath(target.md_rel, start=here)}{'#' + anchor if anchor else ''})"
    def doc_link(m):
        target = pages.get(str(Path(m.group(1)).with_suffix(".md"))) if m.group(1) else None
        return to(target, m.group(2)) if target else m.group(0)
    def nb_link(m):
        rel = os.path.normpath(os.path.join(str(Path(page.rel).parent), m.group(1)))
        target = next((p for p in pages.values() if p.rel == rel), None)
        return to(target, m.group(2)) if target else m.group(0)
    page.md = re.sub(r"\]\(" + re.escape(doc_url) + r"([^)#\s]*)(?:#([^)\s]*))?\)", doc_link, page.md)
    page.md = re.sub(r"\]\((?![a-z]+:)([^)#\s]+\.ipynb)(?:#([^)\s]*))?\)", nb_link, page.md)
    return n


# ------------------------------------------------------------------------------------------------- driver ----------
def mkdocs_config(pages: list[Page], site: Path, pages_dir: Path, work: Path) -> Path:
    import yaml
    nav = [{"Home": "index.md"}] if any(p.md_rel == "index.md" for p in pages) else []
    by_section = {}
    for p in pages:
        if p.md_rel != "index.md": by_section.setdefault(p.section, []).append(p)
    for sec in sorted(by_section, key=lambda s: SECTION_ORDER.index(s) if s in SECTION_ORDER else 99):
        items = sorted(by_section[sec], key=lambda p: (p.order, p.rel) if sec == "Tutorials" else (p.rel.startswith("train_"), p.rel))
        nav.append({sec: items[0].md_rel} if len(items) == 1 and items[0].title == sec else
                   {sec: [{p.title: p.md_rel} for p in items]})
    cfg = {"INHERIT": os.path.relpath(ROOT / "mkdocs.yml", work), "docs_dir": str(pages_dir), "site_dir": str(site),
           "nav": nav}
    path = work / "mkdocs.yml"
    path.write_text("# written by tools/build_docs.py -- edit mkdocs.yml at the project root instead\n" + yaml.safe_dump(cfg, sort_keys=False))
    return path


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default=str(ROOT / "_docs"), help="site folder (default _docs/, nbdev's doc_path)")
    ap.add_argument("--work", default=str(WORK), help="folder for the intermediate files (default build/docs/)")
    ap.add_argument("--jobs", type=int, default=min(os.cpu_count() or 1, 4), help="notebooks executed at once")
    ap.add_argument("--only", default="", help="glob on the notebook path under nbs/: build just these pages (plus home)")
    ap.add_argument("--exec", default="*", help="comma-separated globs of the notebooks to execute (default all); "
                    "the others use an up-to-date executed copy from an earlier build, else show no outputs")
    ap.add_argument("--no-exec", action="store_true", help="execute nothing")
    ap.add_argument("--flags", default="", help="test flags to run anyway, e.g. 'slow' (as nbdev-test --flags)")
    ap.add_argument("--keep-going", action="store_true", help="render a notebook that fails unexecuted, with a warning")
    ap.add_argument("--timeout", type=int, default=600, help="seconds per cell")
    ap.add_argument("--serve", action="store_true", help="then serve the site on http://127.0.0.1:PORT/")
    ap.add_argument("--port", type=int, default=8000)
    args = ap.parse_args(argv)
    t_start = time.time()
    cfg = nbdev_cfg()
    nbs = Path(cfg.nbs_path)
    skip_flags = [f for f in str(cfg.tst_flags or "").split() if f not in args.flags.split()]
    notebooks = find_notebooks(cfg)
    if args.only:
        notebooks = [(p, e) for p, e in notebooks if fnmatch.fnmatch(str(p.relative_to(nbs)), args.only) or p.name == "index.ipynb"]
    lib_key = tree_hash(ROOT / cfg.lib_path, ROOT / "pyproject.toml", Path(__file__))
    work = Path(args.work).resolve()
    proc_dir, pages_dir, site = WORK / "proc", work / "pages", Path(args.out).resolve()

    # 1-2: execute and process what changed. Two caches per notebook: `exec/` (run like nbdev-test) and `src/` (not
    # run: show_doc output only). A notebook outside --exec uses an up-to-date executed copy when there is one.
    def cached(kind: str, nb: Path) -> tuple[Path, Path, str]:
        rel = str(nb.relative_to(nbs))
        key = hashlib.sha256(f"{VERSION}|{lib_key}|{kind}|{skip_flags}|".encode() + nb.read_bytes()).hexdigest()
        dst = proc_dir / kind / rel
        return dst, dst.with_suffix(".key"), key
    def fresh(kind: str, nb: Path) -> bool:
        dst, keyfile, key = cached(kind, nb)
        return dst.exists() and keyfile.exists() and keyfile.read_text() == key
    use, jobs = {}, []
    for nb, executable in notebooks:
        rel = str(nb.relative_to(nbs))
        want = executable and not args.no_exec and any(fnmatch.fnmatch(rel, g) for g in args.exec.split(","))
        kind = "exec" if want or (executable and fresh("exec", nb)) else "src"
        use[rel] = kind
        if not fresh(kind, nb): jobs.append((nb, rel, kind))
    print(f"[docs] {len(notebooks)} notebooks: {len(jobs)} to process "
          f"({sum(k == 'exec' for *_, k in jobs)} to execute), {len(notebooks) - len(jobs)} cached", flush=True)
    threads = max(1, (os.cpu_count() or 1) // max(1, min(args.jobs, len(jobs) or 1)))
    failed = []
    # An executed notebook gets a fresh process (it runs everything, as nbdev-test does); the show_doc-only ones share
    # their workers, which then import torch and the package once instead of once per notebook.
    ctx = mp.get_context("spawn")
    for executing in (True, False):
        batch = sorted((j for j in jobs if (j[2] == "exec") == executing), key=lambda j: -j[0].stat().st_size)
        if not batch: continue
        with cf.ProcessPoolExecutor(max_workers=args.jobs, mp_context=ctx,
                                    max_tasks_per_child=1 if executing else None) as ex:
            futs = {}
            for nb, rel, kind in batch:
                dst, keyfile, key = cached(kind, nb)
                env_root = work / "tmp" / rel.replace("/", "__")
                shutil.rmtree(env_root, ignore_errors=True)
                fut = ex.submit(build_one, str(nb), str(dst), kind == "exec", skip_flags, str(env_root), threads, args.timeout)
                futs[fut] = (nb, rel, kind, keyfile, key)
            for fut in cf.as_completed(futs):
                nb, rel, kind, keyfile, key = futs[fut]
                _, secs, err = fut.result()
                if err is None:
                    keyfile.write_text(key)
                    print(f"[docs] {rel}: {'executed' if kind == 'exec' else 'processed'} in {secs:.1f} s", flush=True)
                    continue
                failed.append(rel)
                print(f"[docs] {rel} FAILED after {secs:.1f} s:\n{err}", file=sys.stderr, flush=True)
                if args.keep_going and kind == "exec":  # the page without outputs, flagged
                    use[rel] = "src"
                    if not fresh("src", nb):
                        dst, keyfile, key = cached("src", nb)
                        err2 = ex.submit(build_one, str(nb), str(dst), False, skip_flags, str(work / "tmp" / "unexec"),
                                         threads, args.timeout).result()[2]
                        if err2: sys.exit(f"[docs] {rel}: {err2}")
                        keyfile.write_text(key)
    if failed and not args.keep_going:
        sys.exit(f"[docs] {len(failed)} notebook(s) failed: {failed} (--keep-going renders them unexecuted)")
    t_exec = time.time() - t_start

    # 3: Markdown pages
    from fastcore.nbio import read_nb
    shutil.rmtree(pages_dir, ignore_errors=True)
    pages: dict[str, Page] = {}
    links = SourceLinks(cfg.git_url, cfg.branch)
    if (gh := os.environ.get("GITHUB_REPOSITORY")) and cfg.git_url and \
            cfg.git_url.rstrip("/").lower() != f"{os.environ.get('GITHUB_SERVER_URL', 'https://github.com')}/{gh}".lower():
        print(f"[docs] warning: source links go to {cfg.git_url} ([project.urls] Repository in pyproject.toml) "
              f"but this build runs in {gh}", file=sys.stderr, flush=True)
    for nb, execute in notebooks:
        rel = str(nb.relative_to(nbs))
        page = Page(rel, page_path(rel), section_of(rel))
        processed = json.loads((proc_dir / use[rel] / rel).read_text())
        lib_mod = None
        m = re.search(r"^\s*#\|\s*default_exp\s+(\S+)", "\n".join(_text(c.get("source")) for c in read_nb(nb).cells if c.cell_type == "code"), re.M)
        if m: lib_mod = m.group(1)
        note = ""
        if rel != "index.ipynb":
            note = f":material-notebook-outline: `nbs/{rel}`" + (f" &nbsp;→&nbsp; :material-language-python: `{Path(cfg.lib_path).name}.{lib_mod}`" if lib_mod else "")
            if not execute: note += " &nbsp;·&nbsp; a papermill notebook, shown unexecuted\n{ .nb-source }\n\n" + job_note(rel)
            elif rel in failed: note += " &nbsp;·&nbsp; **its execution failed: outputs missing**"
            elif use[rel] == "src": note += " &nbsp;·&nbsp; not executed in this build"
            if execute: note += "\n{ .nb-source }"
        notebook_to_page(processed, page, note, links)
        pages[page.md_rel] = page
    for p in pages.values():
        for problem in p.problems: print(f"[docs] {p.md_rel}: {problem}", file=sys.stderr, flush=True)
    index = api_index(pages)
    pages[index.md_rel] = index
    doc_url = (cfg.doc_host or "") + (cfg.doc_baseurl or "/").rstrip("/") + "/"
    n_links = sum(relink(p, pages, doc_url) for p in pages.values())
    for p in pages.values():
        out = pages_dir / p.md_rel
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(p.md)
        for name, data in p.files.items():
            f = out.parent / name; f.parent.mkdir(parents=True, exist_ok=True); f.write_bytes(data)
    for f in nbs.rglob("*"):  # pictures that notebooks' Markdown refers to by relative path
        if f.suffix.lower() in (".png", ".jpg", ".jpeg", ".gif", ".svg") and not any(s.startswith(".") for s in f.relative_to(nbs).parts):
            dst = pages_dir / f.relative_to(nbs); dst.parent.mkdir(parents=True, exist_ok=True); shutil.copy2(f, dst)
    shutil.copytree(ASSETS, pages_dir / "assets", dirs_exist_ok=True)

    # 4: the site
    conf = mkdocs_config(list(pages.values()), site, pages_dir, work)
    r = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--clean", "-q", "-f", str(conf)], cwd=ROOT,
                       env={**os.environ, "NO_MKDOCS_2_WARNING": "1"})   # Material's end-of-life banner, every build
    if r.returncode: sys.exit(f"[docs] mkdocs build failed (exit {r.returncode}); pages are in {pages_dir}")
    size = sum(f.stat().st_size for f in site.rglob("*") if f.is_file())
    print(f"[docs] {len(pages)} pages, {n_links} API links, {links.kept} source links ({links.dropped} dropped) -> {site} "
          f"({size / 2**20:.1f} MiB) in {time.time() - t_start:.0f} s (notebooks {t_exec:.0f} s)", flush=True)
    if failed: print(f"[docs] rendered unexecuted after a failure: {failed}", file=sys.stderr)
    if args.serve:
        import functools, http.server
        handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(site))
        print(f"[docs] serving http://127.0.0.1:{args.port}/ (Ctrl-C stops)", flush=True)
        http.server.ThreadingHTTPServer(("127.0.0.1", args.port), handler).serve_forever()
    return 0 if not failed else 1


if __name__ == "__main__":
    sys.exit(main())
