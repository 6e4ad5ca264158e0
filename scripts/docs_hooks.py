"""Build hooks of the documentation site (mkdocs.yml).

- The CLI reference is generated from the typer app at build time: ``docs/reference/cli.md`` holds the
  hand-written part (errors and exit codes) and the marker below, which the build replaces with
  ``typer ddzoo.cli utils docs --name zoo`` run on this checkout, headings one level down. Nothing generated
  is committed.
- :class:`DocstringDialect`, a griffe extension for mkdocstrings, reads ddzoo's docstrings as written: a
  Google-style ``Example:`` section and Sphinx roles (``:class:`~ddzoo.runtime.Runner```).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from griffe import Extension, Object
from mkdocs.exceptions import PluginError

CLI_PAGE = "reference/cli.md"
MARKER = "<!-- generated: zoo CLI reference -->"
SPHINX_ROLE = re.compile(r":(?:class|func|meth|mod|attr|exc|data|obj):`~?([^`]+)`")
EXAMPLE_HEADING = re.compile(r"^(\s*)Example:[ \t]*$", flags=re.MULTILINE)


def typer_docs(root: Path) -> str:
    """Markdown for every ``zoo`` command, from typer's own docs generator."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(root), os.environ.get("PYTHONPATH")]))}
    run = subprocess.run([sys.executable, "-m", "typer", "ddzoo.cli", "utils", "docs", "--name", "zoo"],
                         cwd=root, env=env, capture_output=True, text=True, timeout=120)
    if run.returncode:
        raise PluginError(f"typer could not document ddzoo.cli: {run.stderr.strip().splitlines()[-1:]}")
    return "\n".join("#" + line if line.startswith("#") else line for line in run.stdout.splitlines())


def on_page_markdown(markdown: str, page, config, files) -> str:
    """Fill the CLI page's marker; other pages pass through."""
    if page.file.src_uri != CLI_PAGE:
        return markdown
    if MARKER not in markdown:
        raise PluginError(f"{CLI_PAGE} lacks the marker {MARKER}")
    return markdown.replace(MARKER, typer_docs(Path(config.config_file_path).parent))


class DocstringDialect(Extension):
    """Rewrite ``Example:`` as Google style's ``Examples:`` and Sphinx roles as code before parsing."""

    def on_object(self, *, obj: Object, **kwargs) -> None:
        if obj.docstring is not None:
            text = EXAMPLE_HEADING.sub(r"\1Examples:", obj.docstring.value)
            obj.docstring.value = SPHINX_ROLE.sub(r"`\1`", text)
