"""HTML for the site: Jinja2 templates (autoescaped: every record string is text, never markup) and the model card
rendered from Markdown by markdown-it-py with raw HTML, images and non-web links turned off."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ddzoo.optional import require
from ddzoo.stats import interval_text, percent

TEMPLATES = Path(__file__).parent / "templates"
STATIC = Path(__file__).parent / "static"
_ALLOWED_LINKS = ("https://", "http://", "mailto:")


def environment():
    """The Jinja2 environment of the site's templates: autoescape on, undefined names an error."""
    jinja2 = require("jinja2", "the static site", extra="site")
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES), autoescape=True,
                             undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True,
                             keep_trailing_newline=True)
    env.filters.update(pct=pct, interval=interval_text, count=count, size=size, number=number)
    return env


def render(env, template: str, **context: Any) -> bytes:
    return env.get_template(template).render(**context).encode()


def card_html(text: str):
    """A model card's Markdown body (its YAML metadata block dropped, as huggingface_hub reads it) as HTML.

    Raw HTML in the card is shown as text, images are not loaded (the site stays offline), only web and mail
    links become links, headings move one level down (the page has its own ``h1``) and table headers get
    ``scope="col"``. Returns markup that is safe by construction.
    """
    markdown_it = require("markdown_it", "the static site's model cards", extra="site", package="markdown-it-py")
    repocard = require("huggingface_hub.repocard", "the static site's model cards", extra="site")
    from markupsafe import Markup

    match = repocard.REGEX_YAML_BLOCK.search(text)
    body = text[match.end():] if match else text
    md = markdown_it.MarkdownIt("commonmark", {"html": False}).enable("table").disable("image")
    md.validateLink = lambda url: url.strip().lower().startswith(_ALLOWED_LINKS)
    tokens = md.parse(body)
    for token in tokens:
        if token.type in ("heading_open", "heading_close"):
            token.tag = f"h{min(int(token.tag[1]) + 1, 6)}"
        elif token.type == "th_open":
            token.attrSet("scope", "col")
    return Markup(md.renderer.render(tokens, md.options, {}))


def pct(value: float | None, digits: int = 2) -> str:
    """0.9125 → ``91.25 %``; None → ``–``."""
    return "–" if value is None else percent(value, digits)


def count(value: int | None) -> str:
    return "–" if value is None else f"{value:,}"


def size(value: int | None) -> str:
    """Bytes as ``1.17 MB`` (decimal units)."""
    if value is None:
        return "–"
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if value >= scale:
            return f"{value / scale:.2f} {unit}"
    return f"{value} B"


def number(value: float | None, digits: int = 4) -> str:
    return "–" if value is None else f"{value:.{digits}f}"
