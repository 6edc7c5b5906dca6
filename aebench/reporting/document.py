"""The report's documents from one list of blocks: GitHub markdown pages (pandas ``to_markdown``) and one standalone
LaTeX file (pandas ``Styler.to_latex``, booktabs; builds with pdflatex), each through a Jinja2 template."""

from __future__ import annotations

import re
import textwrap
import unicodedata
from dataclasses import dataclass, field

import jinja2
import pandas as pd

SPECIAL = {"\\": r"\textbackslash{}", "{": r"\{", "}": r"\}", "$": r"\$", "&": r"\&", "#": r"\#", "^": r"\^{}",
           "_": r"\_", "%": r"\%", "~": r"\~{}", "<": r"\textless{}", ">": r"\textgreater{}", "`": ""}  # fmt: skip
DECLARED = "±Δ−·√✓✗–—≤≥×≈÷"  # characters the LaTeX template declares
WIDTH = 130  # characters of a verbatim line on the landscape page


@dataclass
class Block:
    """One piece of a document: h (heading), p, ul, box (a boxed list), table, figure or pre (verbatim)."""

    kind: str
    text: str = ""
    level: int = 2
    items: list[str] = field(default_factory=list)
    frame: pd.DataFrame | None = None
    note: str = ""
    stem: str = ""
    caption: str = ""


def ascii_of(c: str) -> str:
    return unicodedata.normalize("NFKD", c).encode("ascii", "ignore").decode() or "?"


def tex(text: object) -> str:
    """Prose for LaTeX: markdown links to their text, every special character escaped, **bold** kept."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", str(text))
    out = "".join(SPECIAL.get(c, c if ord(c) < 128 or c in DECLARED else ascii_of(c)) for c in text)
    return re.sub(r"\*\*(.+?)\*\*", r"\\textbf{\1}", out)


def verbatim(text: str) -> str:
    """Text for a verbatim block: ASCII only, and no line that could close the block."""
    text = "".join(c if ord(c) < 128 else ascii_of(c) for c in text).replace(r"\end{verbatim}", r"\end {verbatim}")
    return "\n".join(
        part for line in text.splitlines() for part in textwrap.wrap(line, WIDTH, drop_whitespace=False) or [""]
    )


def to_latex(frame: pd.DataFrame) -> str:
    columns = "l" + "r" * (len(frame.columns) - 1)
    return frame.map(tex).rename(columns=tex).style.hide(axis="index").to_latex(column_format=columns, hrules=True)


ENV = jinja2.Environment(loader=jinja2.PackageLoader("aebench.reporting", "templates"), keep_trailing_newline=True)
ENV.filters.update(latex=to_latex, tex=tex, verbatim=verbatim)
ENV.filters["markdown"] = lambda frame: frame.to_markdown(index=False, disable_numparse=True)


PROSE = ENV.get_template("prose.j2").module  # the report's long sentences


def markdown(blocks: list[Block]) -> str:
    return re.sub(r"\n{3,}", "\n\n", ENV.get_template("page.md.j2").render(blocks=blocks)).strip() + "\n"


def latex(blocks: list[Block]) -> str:
    return ENV.get_template("report.tex.j2").render(blocks=blocks)
