"""The investigator's web page: plain HTML, JavaScript and CSS shipped in this package (no build
step, nothing loaded from elsewhere). The app serves exactly the files listed here."""

from __future__ import annotations

from pathlib import Path

WEB_DIR = Path(__file__).parent
CONTENT_TYPES = {"index.html": "text/html; charset=utf-8", "app.js": "text/javascript; charset=utf-8",
                 "graph.js": "text/javascript; charset=utf-8", "decisions.js": "text/javascript; charset=utf-8",
                 "alerts.js": "text/javascript; charset=utf-8", "style.css": "text/css; charset=utf-8"}


def asset(name: str) -> tuple[str, str] | None:
    """(content, content type) of a shipped file, or None for any other name."""
    content_type = CONTENT_TYPES.get(name)
    if content_type is None:
        return None
    return (WEB_DIR / name).read_text(encoding="utf-8"), content_type
