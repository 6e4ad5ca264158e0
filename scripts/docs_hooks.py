"""mkdocs hook: the CLI reference page is generated from the typer app at build time.

``docs/reference/cli.md`` holds the hand-written part (errors and exit codes) and the marker below; the build
replaces the marker with ``typer ddzoo.cli utils docs --name zoo`` run on this checkout, headings moved one
level down under the page's title. Nothing generated is committed.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from mkdocs.exceptions import PluginError

CLI_PAGE = "reference/cli.md"
MARKER = "<!-- generated: zoo CLI reference -->"


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
