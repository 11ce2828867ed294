"""Object storage: which extra a scheme needs, endpoint overrides, and the credentials to scrub.

claimdiff reads and writes through two filesystem layers: fsspec (manifests, images, claims,
`run.json`, every reader) and Beam's filesystems (the Parquet sinks). Both take credentials from
the standard provider chains and never from claimdiff's configuration: for S3 the AWS chain
(environment, `~/.aws`, instance or pod roles), for GCS Application Default Credentials. An
S3-compatible store (MinIO, Ceph, R2, moto in the tests) is reached by the standard
`AWS_ENDPOINT_URL` (or `AWS_ENDPOINT_URL_S3`) variable, which boto3, s3fs and Beam all read, or
by Beam's own `--s3_endpoint_url`, which `apply_beam_storage_options` hands on to fsspec too so
both layers talk to one store. (pyarrow's own `S3FileSystem` ignores `AWS_ENDPOINT_URL` and needs
`endpoint_override`; claimdiff never uses it: pyarrow reads Parquet through fsspec file handles.)
"""

from __future__ import annotations

import os
from collections.abc import Sequence

from claimdiff.errors import ConfigError

# scheme -> (the claimdiff extra that installs its filesystem, what it installs)
SCHEME_EXTRAS = {
    "s3": ("aws", "s3fs, boto3"),
    "s3a": ("aws", "s3fs, boto3"),
    "gs": ("gcp", "gcsfs, google-cloud-storage"),
    "gcs": ("gcp", "gcsfs, google-cloud-storage"),
    "http": ("http", "aiohttp"),
    "https": ("http", "aiohttp"),
}
# Environment variables of the standard credential chains whose values are secrets: scrubbed by
# value from everything a run writes or logs, like the judge's API key.
CLOUD_SECRET_ENV = (
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_SECURITY_TOKEN",
    "AZURE_STORAGE_KEY",
    "AZURE_STORAGE_ACCOUNT_KEY",
    "AZURE_STORAGE_CONNECTION_STRING",
    "AZURE_STORAGE_SAS_TOKEN",
    "GOOGLE_OAUTH_ACCESS_TOKEN",
)
ENDPOINT_ENV = "AWS_ENDPOINT_URL_S3"


def missing_filesystem(uri: str, exc: ImportError) -> ConfigError:
    """A one-line error naming the extra to install, for a filesystem that does not import."""
    scheme = uri.split("://", 1)[0].lower() if "://" in uri else "file"
    extra, what = SCHEME_EXTRAS.get(scheme, ("", ""))
    if extra:
        return ConfigError(
            f"{scheme}:// needs {what}: pip install 'claimdiff[{extra}]' ({exc})")
    return ConfigError(f"no filesystem for {scheme}:// is installed ({exc})")


def _option(beam_args: Sequence[str], name: str) -> str | None:
    flag = f"--{name}"
    value = None
    for i, arg in enumerate(beam_args):
        if arg.startswith(flag + "="):
            value = arg.split("=", 1)[1]
        elif arg == flag and i + 1 < len(beam_args):
            value = beam_args[i + 1]
    return value


def apply_beam_storage_options(beam_args: Sequence[str]) -> None:
    """Give fsspec the S3 endpoint that Beam's `--s3_endpoint_url` names.

    Through the process environment (botocore's service-specific `AWS_ENDPOINT_URL_S3`), so
    this process's fsspec, boto3 and the worker processes it starts all use it. A remote
    runner's workers get it from their own environment (the container or the cluster's
    configuration): set `AWS_ENDPOINT_URL` there.
    """
    endpoint = _option(beam_args, "s3_endpoint_url")
    if endpoint:
        os.environ[ENDPOINT_ENV] = endpoint
