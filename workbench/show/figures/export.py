"""Writing a figure to disk: offline HTML (plotly.js inlined) and, where a Chromium is available
for kaleido, PNG and PDF for papers."""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Sequence
from pathlib import Path

import plotly.graph_objects as go

from ...base.files import atomic_path
from ..formats import check_formats

__all__ = ["export"]


def _browser() -> str | None:
    if os.environ.get("BROWSER_PATH"):
        return os.environ["BROWSER_PATH"]
    for name in ("chromium", "chromium-browser", "google-chrome", "chrome"):
        path = shutil.which(name)
        if path:
            return path
    return None


def export(
    fig: go.Figure,
    name: str,
    out_dir: str | os.PathLike = "figures",
    formats: Sequence[str] = ("html", "png", "pdf"),
) -> list[Path]:
    """Write ``fig`` as ``out_dir/name.{html,png,pdf}``; returns the files written.

    HTML inlines plotly.js, so it opens offline.  PNG/PDF need kaleido and a Chromium; without
    one, a message says so and the HTML is still written.
    """
    formats, out, written = check_formats(formats), Path(out_dir), []
    if "html" in formats:
        path = out / f"{name}.html"
        with atomic_path(path) as tmp:
            fig.write_html(str(tmp), include_plotlyjs=True, full_html=True)
        written.append(path)
    static = [f for f in formats if f in ("png", "pdf", "svg")]
    if static:
        browser = _browser()
        if browser is None:
            print(
                f"note: no Chromium found, so {name} was written as HTML only. Install one (Debian: "
                "apt-get install chromium) or set BROWSER_PATH for PNG/PDF.",
                file=sys.stderr,
            )
            return written
        os.environ.setdefault("BROWSER_PATH", browser)
        for fmt in static:
            path = out / f"{name}.{fmt}"
            try:
                with atomic_path(path, suffix=f".{fmt}") as tmp:
                    fig.write_image(str(tmp), format=fmt, scale=2 if fmt == "png" else 1)
            except Exception as e:  # noqa: BLE001 - static export is optional
                print(
                    f"note: static export of {name}.{fmt} failed ({type(e).__name__}: {e}); the HTML is "
                    "written.",
                    file=sys.stderr,
                )
                break
            written.append(path)
    return written
