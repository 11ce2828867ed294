"""Load one image: bytes once, sha256, bounded decode, EXIF orientation, RGB, bounded size.

Every problem is an `ImageError` with a reason a person can act on; nothing is substituted for
an image that could not be read (judging claims against a blank square would be worse than no
judgment at all).
"""

from __future__ import annotations

import hashlib
import io
import math
import os
import stat
import threading
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from PIL import ExifTags, Image, ImageFile, ImageOps, UnidentifiedImageError

from claimdiff.config import ImageConfig
from claimdiff.errors import (
    DeadlineExceededError,
    HostRefusedError,
    ImageError,
    NetworkError,
    ResponseTooLargeError,
)
from claimdiff.io import http
from claimdiff.io.hosts import HostPolicy
from claimdiff.io.uris import check_scheme, scheme_of

# The version of the pixels a decoded image hands the judge (draft decoding, resampling, EXIF
# turns). It is part of every cache key: bump it when a change here changes those pixels, so
# answers judged on the old pixels are not reused for the new ones.
PIXELS_VERSION = "draft-2"

# The filter of the final resize. Bicubic, as the judges' own image processors resample (Qwen2-VL,
# LLaVA/CLIP): after a drafted decode it is as close to a full decode with Lanczos as Lanczos is
# (49.1 against 49.3 dB PSNR, 12 MP photo to 1024 px) and a third cheaper (28 against 42 ms);
# benchmarks/RESULTS.md B3.
RESAMPLE = Image.Resampling.BICUBIC


@dataclass(frozen=True)
class ImageRef:
    """An image known by its bytes and its header: what a row whose answer is reused needs (its
    pixels are never decoded). `width` and `height` are the stored size, before EXIF turns."""

    uri: str
    sha256: str
    width: int
    height: int


@dataclass(frozen=True)
class LoadedImage(ImageRef):
    """An image decoded for the judge."""

    image: Image.Image  # RGB, longest side <= ImageConfig.max_side

    def __post_init__(self) -> None:
        if self.image.mode != "RGB":
            raise ValueError(f"LoadedImage must hold an RGB image, got {self.image.mode}")


def read_bytes(uri: str, config: ImageConfig, policy: HostPolicy | None = None) -> bytes:
    """The bytes of one image, at most `images.max_bytes`, within `images.fetch_timeout_s`.

    Only regular files and objects are read: a FIFO, a device, a socket or a folder named like
    an image is refused before anything blocks on it. http(s) URLs go through the bounded
    client and the host policy (`claimdiff.io.hosts`); other remote schemes through fsspec,
    waited for at most the fetch timeout.
    """
    check_scheme(uri, config.allowed_schemes)
    scheme = scheme_of(uri)
    if scheme in ("http", "https"):
        data = _read_http(uri, config, policy or HostPolicy.of(config.allowed_hosts))
    elif scheme == "file":
        data = _read_local(uri.removeprefix("file://"), config)
    else:
        data = _read_fsspec(uri, config)
    if len(data) > config.max_bytes:
        raise ImageError(f"image is larger than images.max_bytes={config.max_bytes} bytes")
    if not data:
        raise ImageError("image file is empty")
    return data


def _read_local(path: str, config: ImageConfig) -> bytes:
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError as exc:
        raise ImageError(f"image not found: {path}") from exc
    except (OSError, ValueError) as exc:  # ValueError: a NUL byte in a path
        raise ImageError(f"image not readable: {type(exc).__name__}: {exc}") from exc
    if not stat.S_ISREG(mode):
        raise ImageError(f"image URI is not a regular file ({_file_kind(mode)}): {path}")
    try:
        # O_NONBLOCK: opening a FIFO for reading must not wait for a writer (the file may have
        # been swapped for one since the stat above; fstat below decides)
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError as exc:
        raise ImageError(f"image not found: {path}") from exc
    except IsADirectoryError as exc:
        raise ImageError(f"image URI is a directory: {path}") from exc
    except PermissionError as exc:
        raise ImageError(f"image not readable (permission denied): {path}") from exc
    except (OSError, ValueError) as exc:  # ValueError: a NUL byte in a path
        raise ImageError(f"image not readable: {type(exc).__name__}: {exc}") from exc
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise ImageError(f"image URI is not a regular file ({_file_kind(mode)}): {path}")
        os.set_blocking(fd, True)
        with os.fdopen(fd, "rb", closefd=False) as handle:
            return handle.read(config.max_bytes + 1)
    except OSError as exc:
        raise ImageError(f"image not readable: {type(exc).__name__}: {exc}") from exc
    finally:
        os.close(fd)


def _file_kind(mode: int) -> str:
    for test, name in ((stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a FIFO"),
                       (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
                       (stat.S_ISSOCK, "a socket")):
        if test(mode):
            return name
    return "not a regular file"


def _read_http(uri: str, config: ImageConfig, policy: HostPolicy) -> bytes:
    try:
        response = http.request("GET", uri, deadline_s=config.fetch_timeout_s,
                                max_bytes=config.max_bytes, policy=policy,
                                max_redirects=config.max_redirects,
                                headers={"Accept": "image/*"})
    except HostRefusedError as exc:
        raise ImageError(str(exc)) from exc
    except ResponseTooLargeError as exc:
        raise ImageError(
            f"image is larger than images.max_bytes={config.max_bytes} bytes") from exc
    except DeadlineExceededError as exc:
        raise ImageError(
            f"image fetch took longer than images.fetch_timeout_s={config.fetch_timeout_s:g} "
            "s") from exc
    except NetworkError as exc:
        raise ImageError(f"image not readable: {exc}") from exc
    if response.status == 404:
        raise ImageError(f"image not found (HTTP 404): {uri}")
    if response.status != 200:
        raise ImageError(f"image not readable: HTTP {response.status}")
    return response.body


def _read_fsspec(uri: str, config: ImageConfig) -> bytes:
    """An object through fsspec, in a thread waited for at most the fetch timeout: a stalled
    store fails this image, not the run (the thread ends when the store's own timeouts end it)."""
    import fsspec

    outcome: dict[str, bytes | BaseException] = {}

    def fetch() -> None:
        try:
            fs, path = fsspec.core.url_to_fs(uri)
            info = fs.info(path)
            if info.get("type") not in (None, "file"):
                raise ImageError(f"image URI is not a file ({info.get('type')}): {uri}")
            with fs.open(path, "rb") as handle:
                outcome["data"] = handle.read(config.max_bytes + 1)
        except BaseException as exc:  # handed to the waiting thread below
            outcome["error"] = exc

    worker = threading.Thread(target=fetch, name="claimdiff-image-fetch", daemon=True)
    worker.start()
    worker.join(config.fetch_timeout_s)
    if worker.is_alive():
        raise ImageError(
            f"image fetch took longer than images.fetch_timeout_s={config.fetch_timeout_s:g} s")
    error = outcome.get("error")
    if isinstance(error, ImageError):
        raise error
    if isinstance(error, FileNotFoundError):
        raise ImageError(f"image not found: {uri}") from error
    if isinstance(error, PermissionError):
        raise ImageError(f"image not readable (permission denied): {uri}") from error
    if isinstance(error, BaseException):
        raise ImageError(f"image not readable: {type(error).__name__}: {error}") from error
    data = outcome["data"]
    assert isinstance(data, bytes)
    return data


def probe(data: bytes, config: ImageConfig) -> tuple[int, int]:
    """The size an image's header declares, under the pixel bound; no pixel is decoded."""
    with _decode_errors():
        return _open_bounded(data, config).size


def decode(data: bytes, config: ImageConfig) -> tuple[Image.Image, int, int]:
    """Decode under the pixel bound; returns the RGB image (bounded) and the original size."""
    with _decode_errors():
        opened = _open_bounded(data, config)
        width, height = opened.size
        drafted = None
        if opened.format == "JPEG":
            # DCT scaling: decode at 1/2, 1/4 or 1/8 of the size, never below the final
            # size (2x faster for a 12 MP photo sent at 1024 px; benchmarks/RESULTS.md B3)
            drafted = opened.draft(None, fit_size((width, height), config.max_side))
        opened.load()
        drafted_size = opened.size  # before the EXIF turn

    try:
        orientation = _orientation(opened)
        # in place: an upright photo is not copied (a drafted 12 MP photo is 9 MB of pixels)
        ImageOps.exif_transpose(opened, in_place=True)
    except Exception as exc:
        # corrupt EXIF makes Pillow raise struct.error, KeyError, TypeError, ...
        raise ImageError(
            f"image has unreadable EXIF orientation: {type(exc).__name__}: {exc}") from exc
    image = _to_rgb(opened)
    # The final size comes from the original size, so a drafted decode ends at exactly the size
    # a full decode would. A drafted image may end in a partly covered row and column (4001 px
    # at 1/4 is 1000.25 px, decoded as 1001): the box Pillow returns says which part is the
    # photo, and the resize reads only that, as `Image.thumbnail` does.
    upright = (height, width) if orientation in (5, 6, 7, 8) else (width, height)
    target = fit_size(upright, config.max_side)
    box = None
    if drafted is not None:
        box = _upright_box(drafted[1], drafted_size, orientation)
    if image.size != target:
        image = image.resize(target, RESAMPLE, box=box, reducing_gap=2.0)
    elif image is opened:
        image = image.copy()  # a plain image, not the file object (and the bytes it holds)
    return image, width, height


def _open_bounded(data: bytes, config: ImageConfig) -> ImageFile.ImageFile:
    """The image's header, read; refused above `images.max_decode_pixels`."""
    # Truncated files must fail, not decode half an image with grey filler.
    ImageFile.LOAD_TRUNCATED_IMAGES = False
    opened = Image.open(io.BytesIO(data))
    width, height = opened.size
    if width * height > config.max_decode_pixels:
        raise ImageError(
            f"image has {width}x{height} pixels, over images.max_decode_pixels="
            f"{config.max_decode_pixels} (decompression bomb?)"
        )
    return opened


@contextmanager
def _decode_errors() -> Iterator[None]:
    """Whatever Pillow raises on bad bytes, as the `ImageError` a person can act on."""
    try:
        with warnings.catch_warnings():
            # our own bound is the check; Pillow's global one only warns or raises later
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            yield
    except ImageError:
        raise
    except UnidentifiedImageError as exc:
        raise ImageError("not an image (no decoder recognises the bytes)") from exc
    except Image.DecompressionBombError as exc:
        raise ImageError(f"decompression bomb: {exc}") from exc
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        # Pillow reports truncated and corrupt data as OSError/SyntaxError/EOFError
        raise ImageError(f"image is corrupt or truncated: {exc}") from exc
    except Exception as exc:
        # Hostile bytes make some decoders raise other types (struct.error, IndexError, ...):
        # still one bad image, never a crashed run.
        raise ImageError(f"image could not be decoded: {type(exc).__name__}: {exc}") from exc


def fit_size(size: tuple[int, int], max_side: int) -> tuple[int, int]:
    """The size `Image.thumbnail((max_side, max_side))` gives an image of `size` (its rounding:
    the aspect ratio kept as closely as whole pixels allow)."""
    width, height = size
    if width <= max_side and height <= max_side:
        return size
    aspect = width / height
    if aspect <= 1:
        x = max(min(math.floor(max_side * aspect), math.ceil(max_side * aspect),
                    key=lambda n: abs(aspect - n / max_side)), 1)
        return x, max_side
    y = max(min(math.floor(max_side / aspect), math.ceil(max_side / aspect),
                key=lambda n: 0 if n == 0 else abs(aspect - max_side / n)), 1)
    return max_side, y


def _orientation(decoded: Image.Image) -> int:
    """The EXIF orientation `exif_transpose` applied (1, the default, when there is none)."""
    value = decoded.getexif().get(ExifTags.Base.Orientation, 1)
    return value if isinstance(value, int) else 1


def _upright_box(box: tuple[float, float, float, float], size: tuple[int, int],
                 orientation: int) -> tuple[float, float, float, float]:
    """`box` (a region of an image of `size`) where it lies once the image is turned upright.

    Each orientation is a transpose (5-8) then left-right and/or top-bottom flips; the box is
    carried as its margins to the four sides, which those moves only permute."""
    width, height = size
    left, top, right, bottom = box[0], box[1], width - box[2], height - box[3]
    if orientation in (5, 6, 7, 8):
        left, top, right, bottom = top, left, bottom, right
        width, height = height, width
    if orientation in (2, 3, 6, 7):
        left, right = right, left
    if orientation in (3, 4, 7, 8):
        top, bottom = bottom, top
    return left, top, width - right, height - bottom


def _to_rgb(image: Image.Image) -> Image.Image:
    if image.mode == "RGB":
        return image
    if image.mode == "P" and "transparency" in image.info:
        image = image.convert("RGBA")
    if image.mode in ("RGBA", "LA", "PA"):
        # transparent pixels on white, as an image viewer shows them, not on black
        background = Image.new("RGB", image.size, (255, 255, 255))
        background.paste(image, mask=image.getchannel("A"))
        return background
    return image.convert("RGB")


def load_image(uri: str, config: ImageConfig, policy: HostPolicy | None = None) -> LoadedImage:
    data = read_bytes(uri, config, policy)
    image, width, height = decode(data, config)
    return LoadedImage(uri=uri, sha256=hashlib.sha256(data).hexdigest(), width=width,
                       height=height, image=image)


def from_pixels(image: Image.Image, config: ImageConfig, uri: str) -> LoadedImage:
    """An image already decoded by the caller (a trainer's dataset holds PIL images): bounded
    like a decoded file, identified by the sha256 of its mode, size and pixels."""
    width, height = image.size
    if width * height > config.max_decode_pixels:
        raise ImageError(f"image has {width}x{height} pixels, over images.max_decode_pixels="
                         f"{config.max_decode_pixels}")
    digest = hashlib.sha256(f"{image.mode}:{width}x{height}:".encode())
    digest.update(image.tobytes())
    rgb = _to_rgb(image)
    if rgb is image:
        rgb = image.copy()  # thumbnail works in place: never resize the caller's image
    rgb.thumbnail((config.max_side, config.max_side), RESAMPLE)
    return LoadedImage(uri=uri, sha256=digest.hexdigest(), width=width, height=height, image=rgb)


def from_bytes(data: bytes, config: ImageConfig, uri: str) -> LoadedImage:
    """An encoded image the caller already holds (a request body), bounded like a read file."""
    if len(data) > config.max_bytes:
        raise ImageError(f"image has {len(data)} bytes, over images.max_bytes={config.max_bytes}")
    image, width, height = decode(data, config)
    return LoadedImage(uri=uri, sha256=hashlib.sha256(data).hexdigest(), width=width,
                       height=height, image=image)
