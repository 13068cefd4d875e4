"""The parser the CLI reference is read from: ``workbench.cli.build_parser()``, with preformatted text
kept as it is.

sphinx-argparse reads every description as reStructuredText. A (sub)command whose help is laid out by
hand (``RawDescriptionHelpFormatter`` / ``RawTextHelpFormatter``: a table of choices, say) would be
reflowed and misparsed, so its description and epilog become literal blocks here. Nothing else
changes: the page shows the program's own parser.
"""

from __future__ import annotations

import argparse
import textwrap

from workbench.cli import build_parser

RAW = (argparse.RawDescriptionHelpFormatter, argparse.RawTextHelpFormatter)


def literal(text: str | None) -> str | None:
    """``text`` as a reStructuredText literal block (shown as written)."""
    if not text or "\n" not in text:
        return text
    return "::\n\n" + textwrap.indent(textwrap.dedent(text).strip("\n"), "    ") + "\n"


def keep_layout(parser: argparse.ArgumentParser) -> None:
    if isinstance(parser.formatter_class, type) and issubclass(parser.formatter_class, RAW):
        parser.description = literal(parser.description)
        parser.epilog = literal(parser.epilog)
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                keep_layout(sub)


def parser() -> argparse.ArgumentParser:
    """``workbench``'s parser, for the CLI reference."""
    p = build_parser()
    keep_layout(p)
    return p
