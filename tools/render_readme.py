"""README.md is the landing page, nbs/index.ipynb, as Markdown (`./drawlab readme`; tests/test_repo.py checks it is current).

    python tools/render_readme.py [--out README.md]

nbconvert writes the notebook's Markdown; links to notebooks, relative to `nbs/` there (`tutorials/quickstart.ipynb`,
which the docs build turns into page links), are made relative to the project root, where README.md lives.
"""
from __future__ import annotations

import argparse
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def render(index: Path = ROOT / "nbs" / "index.ipynb") -> str:
    "The README's text: `index` as Markdown, its relative notebook links rooted at the project."
    from nbconvert import MarkdownExporter
    md, _ = MarkdownExporter().from_filename(str(index))
    folder = index.parent.relative_to(ROOT).as_posix()
    return re.sub(r"\]\((?![a-z]+:|/|#)([^)\s]+\.ipynb(?:#[^)\s]*)?)\)", rf"]({folder}/\1)", md)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=ROOT / "README.md")
    args = ap.parse_args(argv)
    args.out.write_text(render())
    print(f"[readme] {args.out}")


if __name__ == "__main__":
    main()
