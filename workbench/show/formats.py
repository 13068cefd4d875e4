"""The file formats figures are written in, checked before any work.

>>> check_formats(["html", "png"])
['html', 'png']
>>> check_formats(["bmp"])
Traceback (most recent call last):
...
workbench.show.formats.FormatError: figure format 'bmp' is not one the workbench writes; ...
"""

from __future__ import annotations

from collections.abc import Sequence

__all__ = ["FIGURE_FORMATS", "FormatError", "check_formats"]

FIGURE_FORMATS = ("html", "png", "pdf", "svg")  # html: plotly, offline; the others through kaleido


class FormatError(ValueError):
    """A figure format the workbench does not write."""


def check_formats(formats: Sequence[str]) -> list[str]:
    """``formats`` as a list if every one is in :data:`FIGURE_FORMATS`, else :class:`FormatError`."""
    if isinstance(formats, str):
        formats = [formats]
    for f in formats:
        if f not in FIGURE_FORMATS:
            raise FormatError(
                f"figure format {f!r} is not one the workbench writes; "
                f"choose from {', '.join(FIGURE_FORMATS)}"
            )
    return list(formats)
