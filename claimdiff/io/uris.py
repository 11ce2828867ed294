"""URIs: scheme checks and resolution of relative image paths against the manifest."""

from __future__ import annotations

import os
import posixpath
from collections.abc import Iterable

from claimdiff.errors import DisallowedURIError

_SCHEME_SEP = "://"


def scheme_of(uri: str) -> str:
    """`s3` for `s3://b/k`, `file` for plain paths and `file://` URIs."""
    if _SCHEME_SEP in uri:
        return uri.split(_SCHEME_SEP, 1)[0].lower()
    return "file"


def check_scheme(uri: str, allowed: Iterable[str]) -> None:
    """Refuse a URI whose scheme is not allowed. A member of a tar shard
    (`tar://member::SHARD`, claimdiff.io.webdataset) is checked by the shard's own URI."""
    if uri.lower().startswith("tar://") and "::" in uri:
        uri = uri.split("::", 1)[1]
    scheme = scheme_of(uri)
    if scheme not in {s.lower() for s in allowed}:
        raise DisallowedURIError(
            f"URI scheme {scheme!r} is not allowed (images.allowed_schemes: {sorted(allowed)})"
        )


def resolve(uri: str, base: str) -> str:
    """Resolve `uri` against the folder of the manifest `base`; absolute URIs pass through."""
    if _SCHEME_SEP in uri or os.path.isabs(uri):
        return uri
    if _SCHEME_SEP in base:
        scheme, path = base.split(_SCHEME_SEP, 1)
        folder = posixpath.dirname(path)
        return f"{scheme}{_SCHEME_SEP}{posixpath.normpath(posixpath.join(folder, uri))}"
    folder = os.path.dirname(os.path.abspath(base))
    return os.path.normpath(os.path.join(folder, uri))


def normalised(uri: str) -> str:
    """A relative path without `.`/`..` detours (`./img/../a.png` -> `a.png`); others as given.

    >>> normalised("./img/../a.png"), normalised("s3://b/./k.png")
    ('a.png', 's3://b/./k.png')
    """
    if _SCHEME_SEP in uri or os.path.isabs(uri):
        return uri
    return posixpath.normpath(uri.replace("\\", "/"))
