"""The README's figures are rendered from ``docs/results/``, never typed.

A rendered block in README.md is

    <!-- rendered: NAME -->
    ...what docs/readme/NAME.md gives, filled in from the results...
    <!-- end rendered -->

``docs/readme/NAME.md`` is prose with ``{fields}`` in ``str.format`` syntax (a ``,`` in a
format spec groups thousands with spaces: ``{decisions:,.0f}`` gives "29 268"); the fields
come from ``experiments.publish.blocks.BLOCKS[NAME]``, a function of the published results
root. ``splinterlab readme`` redraws every block; ``splinterlab readme --check`` (and a test in
``make test``) fails when a block differs from what the committed results render.
"""

from __future__ import annotations

import re
import string
from pathlib import Path

PROJECT = Path(__file__).resolve().parent.parent.parent
README = PROJECT / "README.md"
TEMPLATES = PROJECT / "docs" / "readme"
BLOCK = re.compile(r"(?P<head><!-- rendered: (?P<name>[\w-]+) -->\n)(?P<body>.*?)"
                   r"(?P<tail><!-- end rendered -->)", re.S)


class RenderError(ValueError):
    """A block that cannot be rendered, in one sentence."""


class _Figures(string.Formatter):
    """``str.format`` where a ``,`` groups thousands with a space, as the README writes them."""

    def format_field(self, value, format_spec: str) -> str:
        text = super().format_field(value, format_spec)
        return text.replace(",", " ") if "," in format_spec else text


def render_block(name: str, root: Path) -> str:
    from experiments.publish.blocks import BLOCKS

    if name not in BLOCKS:
        raise RenderError(f"README block {name!r} has no renderer in "
                          "experiments/publish/blocks.py")
    template = TEMPLATES / f"{name}.md"
    if not template.exists():
        raise RenderError(f"README block {name!r} has no template {template}")
    fields = BLOCKS[name](root)
    try:
        return _Figures().format(template.read_text(), **fields)
    except KeyError as e:
        raise RenderError(f"template {template.name} asks for {e.args[0]!r}, which the "
                          f"results do not give") from None


def render(text: str, root: Path) -> str:
    """``text`` with every rendered block redrawn from ``root``."""
    return BLOCK.sub(lambda m: m["head"] + render_block(m["name"], root) + m["tail"], text)


def differences(text: str, root: Path) -> list[str]:
    """The blocks of ``text`` that differ from what ``root`` renders."""
    return [m["name"] for m in BLOCK.finditer(text)
            if m["body"] != render_block(m["name"], root)]


def shown_figures() -> set[str]:
    """The figures the README shows, as paths under docs/results/ (from the templates)."""
    return {m for t in TEMPLATES.glob("*.md")
            for m in re.findall(r"docs/results/(\S+?\.png)", t.read_text())}


def names(text: str) -> list[str]:
    return [m["name"] for m in BLOCK.finditer(text)]
