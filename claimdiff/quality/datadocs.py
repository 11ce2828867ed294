"""Make a Great Expectations Data Docs site viewable offline, without fetching anything.

GE's pages load jQuery, Bootstrap, Vega and fonts from CDNs and its logo from a web bucket; on a
machine without a network those requests hang or fail, and elsewhere they tell third parties
that a report was opened. The pages' content is static HTML: every remote stylesheet, script
and image is removed (the inline scripts only drive those libraries), a small stylesheet of our
own is put in their place, inline event handlers (which call the removed scripts) are dropped,
and a Content-Security-Policy forbids any fetch the rewrite missed.
Lost on the way: the pages' interactive table filtering and collapsing.
"""

from __future__ import annotations

import re
from pathlib import Path

_REMOTE = r"""(?:https?:)?//"""
_SCRIPT = re.compile(r"<script\b[^>]*>.*?</script\s*>", re.IGNORECASE | re.DOTALL)
_REMOTE_TAG = re.compile(
    rf"""<(?:link|img|source|iframe)\b[^>]*\b(?:href|src)\s*=\s*["']?{_REMOTE}[^>]*>""",
    re.IGNORECASE)
_CSS_REMOTE = re.compile(rf"""url\(\s*["']?{_REMOTE}[^)]*\)|@import\s[^;]*;""", re.IGNORECASE)
_HEAD = re.compile(r"<head\b[^>]*>", re.IGNORECASE)
# a start tag, and an inline event handler attribute in one (`onclick="showAll()"`): the
# handlers call the scripts removed above, and the CSP refuses them (recent Chromium reports
# each as a console error when the page loads). Only inside tags: escaped text is left alone.
_START_TAG = re.compile(r"<[A-Za-z][^<>]*>")
_HANDLER = re.compile(r"""\s+on[A-Za-z]+\s*=\s*(?:"[^"]*"|'[^']*'|[^\s"'>]+)""", re.IGNORECASE)

CSP = ("default-src 'none'; img-src 'self' data: file:; style-src 'self' 'unsafe-inline' file:; "
       "font-src 'self' file:; base-uri 'none'; form-action 'none'")

OFFLINE_STYLE = """
body { font-family: system-ui, sans-serif; margin: 1.5rem; color: #1d2330; }
table { border-collapse: collapse; margin: 0.5rem 0 1rem; }
th, td { border: 1px solid #cfd6e0; padding: 0.25rem 0.5rem; vertical-align: top;
         text-align: left; }
.collapse:not(.show) { display: block; }
.modal, .ge-walkthrough-modal, .navbar-toggler, .sticky, button { display: none !important; }
.alert-danger, .text-danger { color: #a5171d; }
.text-success { color: #1f7a35; }
nav, .col-md-2 { margin-bottom: 1rem; }
footer { display: none; }
/* the status icons are Font Awesome glyphs; without the font, say it in text */
.fas::before { font-style: normal; font-weight: 700; }
.fa-check-circle::before { content: "\\2714  pass"; color: #1f7a35; }
.fa-times::before, .fa-times-circle::before { content: "\\2718  fail"; color: #a5171d; }
.fa-exclamation-triangle::before { content: "!  error"; color: #a5171d; }
"""


def _css_offline(text: str) -> str:
    """Remote `url(...)` values become `none`; remote `@import`s go."""
    return _CSS_REMOTE.sub(lambda m: "" if m.group(0).startswith("@") else "none", text)


def offline_html(text: str) -> str:
    """One page without remote resources or scripts, with the offline stylesheet and a CSP."""
    text = _SCRIPT.sub("", text)
    text = _REMOTE_TAG.sub("", text)
    text = _START_TAG.sub(lambda m: _HANDLER.sub("", m.group(0)), text)
    text = _css_offline(text)  # inline <style> blocks load GE's logo from a web bucket
    head = (f'<meta http-equiv="Content-Security-Policy" content="{CSP}">'
            f"<style>{OFFLINE_STYLE}</style>")
    text, found = _HEAD.subn(lambda m: m.group(0) + head, text, count=1)
    return text if found else head + text


_REFERENCE = re.compile(r"""(?:href|src)\s*=\s*["']([^"'#?]+)|url\(\s*["']?([^"')#?]+)""",
                        re.IGNORECASE)


def _prune_static(root: Path) -> int:
    """Remove the files of GE's `static/` that no page or stylesheet refers to (the walkthrough
    animations are most of a site's 5 MB)."""
    referenced: set[Path] = set()
    for path in root.rglob("*"):
        if path.suffix.lower() not in (".html", ".htm", ".css"):
            continue
        for match in _REFERENCE.finditer(path.read_text(encoding="utf-8")):
            reference = match.group(1) or match.group(2)
            if not re.match(r"^(?:[a-z][a-z0-9+.-]*:|//)", reference, re.IGNORECASE):
                referenced.add((path.parent / reference).resolve())
    removed = 0
    for path in sorted((root / "static").rglob("*")):
        if path.is_file() and path.suffix.lower() != ".css" and path.resolve() not in referenced:
            path.unlink()
            removed += 1
    return removed


def make_offline(root: Path) -> int:
    """Rewrite every page and stylesheet under a Data Docs folder and drop unused static files;
    returns the files changed."""
    changed = 0
    for path in sorted(root.rglob("*")):
        if path.suffix.lower() in (".html", ".htm"):
            before = path.read_text(encoding="utf-8")
            after = offline_html(before)
        elif path.suffix.lower() == ".css":
            before = path.read_text(encoding="utf-8")
            after = _css_offline(before)
        else:
            continue
        if after != before:
            path.write_text(after, encoding="utf-8")
            changed += 1
    return changed + _prune_static(root)
