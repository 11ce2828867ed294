"""Small text predicates shared by every place untrusted text is validated.

A string that renders as nothing is empty, whatever its length: a reference made of zero-width
spaces or a claim of combining marks says nothing, and must not pass a "non-empty" check.
"""

from __future__ import annotations

import unicodedata

# Categories that draw nothing on their own: controls, format characters (zero-width spaces and
# joiners, bidi marks, the BOM), surrogates, separators (every Unicode space), and combining marks.
_BLANK_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Zs", "Zl", "Zp", "Mn", "Me"})
# Letters and symbols that fonts render as blank although their category says otherwise.
_BLANK_GLYPHS = frozenset(
    "\u115f\u1160\u3164\uffa0"  # Hangul fillers
    "\u2800"  # braille pattern blank
    "\u180e"  # Mongolian vowel separator
    "\u17b4\u17b5"  # Khmer inherent vowels
    "\u034f"  # combining grapheme joiner
)


def is_blank_char(char: str) -> bool:
    return char in _BLANK_GLYPHS or unicodedata.category(char) in _BLANK_CATEGORIES


def is_blank(text: str | None) -> bool:
    """Whether `text` is None or shows nothing at all.

    >>> is_blank("\\u200b \\u3164\\n"), is_blank(" a "), is_blank(None)
    (True, False, True)
    """
    return text is None or all(is_blank_char(char) for char in text)
