"""The exception tree. Row-level errors become failure rows; the others stop a run."""

from __future__ import annotations


class ClaimdiffError(Exception):
    """Base of every error claimdiff raises on purpose."""


class ConfigError(ClaimdiffError):
    """The configuration or the command line is invalid."""


class MissingExtraError(ClaimdiffError, ImportError):
    """An optional dependency is not installed; the message names the extra to install."""

    def __init__(self, package: str, extra: str) -> None:
        super().__init__(f"{package} is not installed: pip install 'claimdiff[{extra}]'")


class ClaimHeldError(ConfigError):
    """Another run holds the output folder (or left a claim behind); the message names it."""


class UnreadableRunError(ClaimdiffError):
    """A run's outputs cannot be read (no run.json, a shard that is not Parquet, a missing
    dataset): nothing about its quality can be said. `claimdiff report` exits 5."""


class IncompleteRunError(UnreadableRunError):
    """A run folder holds no committed run: no `run.json` (killed, or still running), or one
    whose listed shards are missing. Every reader refuses such a folder."""


class OutOfSpaceError(ClaimdiffError):
    """The output's filesystem is full (or over quota): nothing more can be written there."""


class PipelineFailed(ClaimdiffError):
    """The Beam pipeline itself raised (a model that does not load, a runner error); the
    original exception is chained. No outputs of the run can be trusted."""


class ManifestError(ClaimdiffError):
    """A manifest file cannot be read at all (missing, unknown format, unrecoverable syntax)."""


class RowError(ClaimdiffError):
    """A problem with one input row: it becomes a failure row, the run goes on."""


class ManifestRowError(RowError):
    """A manifest row is malformed (missing or mistyped columns)."""

    def __init__(self, message: str, raw: str | None = None) -> None:
        super().__init__(message)
        self.raw = raw  # the row's text where it could not be parsed at all


class ImageError(RowError):
    """An image is missing, unreadable, not an image, truncated or too large."""


class DisallowedURIError(RowError):
    """A URI uses a scheme outside `images.allowed_schemes`."""


class JudgeOutputError(RowError):
    """The judge's answer is not valid JSON of the judge schema after every attempt."""


class JudgeRequestError(RowError):
    """The backend could not answer this request (no gold labels, prompt too long, ...)."""



class NetworkError(ClaimdiffError):
    """A request over the network did not give an answer (`claimdiff.io.http`)."""


class TransportError(NetworkError):
    """The connection could not be made or broke (refused, reset, TLS, DNS)."""


class DeadlineExceededError(NetworkError, TimeoutError):
    """The whole request (connect, headers and body together) ran past its deadline."""


class HostRefusedError(NetworkError):
    """The URL's host resolves to an address class the host policy refuses (loopback,
    private, link-local and cloud metadata, ...): nothing was sent to it."""


class ResponseTooLargeError(NetworkError):
    """The response body is larger than the caller's byte limit."""
