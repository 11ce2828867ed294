"""The exception tree. Row-level errors become failure rows; the others stop a run or a command.

    ClaimdiffError                   every error claimdiff raises on purpose
    ├── ConfigError                  bad configuration or command line: exit 2, before anything runs
    │   └── ClaimHeldError           another run holds the output folder
    ├── MissingExtraError            an optional dependency is missing (also an ImportError)
    ├── UnreadableRunError           a run folder cannot be read: exit 5
    │   └── IncompleteRunError       ... because it never committed (killed, or still running)
    ├── OutOfSpaceError              the output's filesystem is full: exit 6
    ├── PipelineFailed               the Beam pipeline itself raised: exit 3
    ├── ManifestError                a manifest no row of which can be read (refused up front)
    ├── NetworkError                 a request over the network gave no answer (`io.http`)
    │   ├── TransportError           refused, reset, DNS, TLS
    │   ├── DeadlineExceededError    the whole request ran past its deadline (a TimeoutError)
    │   ├── HostRefusedError         the host policy refused the address: nothing was sent
    │   └── ResponseTooLargeError    the body is over the byte limit
    └── RowError                     one input row fails; the run goes on
        ├── ManifestRowError         a manifest row is malformed
        ├── DisallowedURIError       a URI's scheme is not allowed
        ├── ImageError               an image cannot be used
        ├── JudgeOutputError         an answer is not a judge output (retried, then a failure row)
        └── JudgeRequestError        the backend could not answer a request; by kind:
            ├── ContextOverflowError   the prompt does not fit the model's context (final)
            ├── NoGoldError            the labels judge has no gold for the row (final)
            ├── JudgeUnavailableError  the endpoint or engine gave no answer (final: the backend
            │                          already retried what can be retried)
            └── RefusalError           an answer without content (retried like an empty answer)

Backends report a request they could not answer with one of the `JudgeRequestError` kinds on
its answer; the judging loop retries or fails it by its kind (`retryable`), never by its
message.
"""

from __future__ import annotations

from typing import ClassVar


class ClaimdiffError(Exception):
    """Base of every error claimdiff raises on purpose."""


class ConfigError(ClaimdiffError):
    """The configuration or the command line is invalid."""


class ClaimHeldError(ConfigError):
    """Another run holds the output folder (or left a claim behind); the message names it."""


class MissingExtraError(ClaimdiffError, ImportError):
    """An optional dependency is not installed; the message names the extra to install."""

    def __init__(self, package: str, extra: str) -> None:
        super().__init__(f"{package} is not installed: pip install 'claimdiff[{extra}]'")


class UnreadableRunError(ClaimdiffError):
    """A run's outputs cannot be read (no run.json, a shard that is not Parquet, a missing
    dataset): nothing about them can be said."""


class IncompleteRunError(UnreadableRunError):
    """A run folder holds no committed run: no `run.json` (killed, or still running), or one
    whose listed shards are missing. Every reader refuses such a folder."""


class OutOfSpaceError(ClaimdiffError):
    """The output's filesystem is full (or over quota): nothing more can be written there."""


class PipelineFailed(ClaimdiffError):
    """The Beam pipeline itself raised (a model that does not load, a runner error); the
    original exception is chained. No outputs of the run can be trusted."""


class EarlyStopError(ClaimdiffError):
    """The run stopped early: its failure share passed `run.max_failure_share` over
    `run.early_stop_min_rows` rows. No `run.json`; the answers judged so far are kept for
    `--resume`."""


class ManifestError(ClaimdiffError):
    """A manifest file cannot be read at all (missing, unknown format, unrecoverable syntax)."""


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
    """The backend could not answer this request. `retryable` says whether another attempt
    (with the retry temperature and seed) can help."""

    retryable: ClassVar[bool] = False


class ContextOverflowError(JudgeRequestError):
    """The prompt (image tokens included) does not fit the model's context."""


class NoGoldError(JudgeRequestError):
    """The `labels` judge has no gold answer for this request."""


class JudgeUnavailableError(JudgeRequestError):
    """The judge endpoint or engine gave no answer: a transport failure or timeout after the
    backend's own retries, an HTTP error, a dead local server, an engine that aborted."""


class RefusalError(JudgeRequestError):
    """The judge answered without content (a refusal, a null message): another attempt may
    answer."""

    retryable = True
