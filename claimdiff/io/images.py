"""Load one image: bytes once, sha256, bounded decode, EXIF orientation, RGB, bounded size.

Every problem is an `ImageError` with a reason a person can act on; nothing is substituted for
an image that could not be read (judging claims against a blank square would be worse than no
judgment at all).
"""

from __future__ import annotations

import hashlib
import io
import warnings
from dataclasses import dataclass

from PIL import Image, ImageFile, ImageOps, UnidentifiedImageError

from claimdiff.config import ImageConfig
from claimdiff.errors import ImageError
from claimdiff.io.uris import check_scheme


@dataclass(frozen=True)
class LoadedImage:
    uri: str
    sha256: str
    width: int
    height: int
    image: Image.Image  # RGB, longest side <= ImageConfig.max_side

    def __post_init__(self) -> None:
        if self.image.mode != "RGB":
            raise ValueError(f"LoadedImage must hold an RGB image, got {self.image.mode}")


def read_bytes(uri: str, config: ImageConfig) -> bytes:
    import fsspec

    check_scheme(uri, config.allowed_schemes)
    try:
        with fsspec.open(uri, "rb") as handle:
            data = handle.read(config.max_bytes + 1)
    except FileNotFoundError as exc:
        raise ImageError(f"image not found: {uri}") from exc
    except IsADirectoryError as exc:
        raise ImageError(f"image URI is a directory: {uri}") from exc
    except PermissionError as exc:
        raise ImageError(f"image not readable (permission denied): {uri}") from exc
    except (OSError, ValueError) as exc:  # ValueError: a NUL byte in a path, a malformed URL
        raise ImageError(f"image not readable: {type(exc).__name__}: {exc}") from exc
    if len(data) > config.max_bytes:
        raise ImageError(f"image is larger than images.max_bytes={config.max_bytes} bytes")
    if not data:
        raise ImageError("image file is empty")
    return data


def decode(data: bytes, config: ImageConfig) -> tuple[Image.Image, int, int]:
    """Decode under the pixel bound; returns the RGB image (bounded) and the original size."""
    # Truncated files must fail, not decode half an image with grey filler.
    ImageFile.LOAD_TRUNCATED_IMAGES = False
    try:
        with warnings.catch_warnings():
            # our own bound below is the check; Pillow's global one only warns or raises later
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            opened = Image.open(io.BytesIO(data))
            width, height = opened.size
            if width * height > config.max_decode_pixels:
                raise ImageError(
                    f"image has {width}x{height} pixels, over images.max_decode_pixels="
                    f"{config.max_decode_pixels} (decompression bomb?)"
                )
            opened.load()
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

    try:
        image: Image.Image = ImageOps.exif_transpose(opened)
    except Exception as exc:
        # corrupt EXIF makes Pillow raise struct.error, KeyError, TypeError, ...
        raise ImageError(
            f"image has unreadable EXIF orientation: {type(exc).__name__}: {exc}") from exc
    image = _to_rgb(image)
    image.thumbnail((config.max_side, config.max_side), Image.Resampling.LANCZOS)
    return image, width, height


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


def load_image(uri: str, config: ImageConfig) -> LoadedImage:
    data = read_bytes(uri, config)
    image, width, height = decode(data, config)
    return LoadedImage(uri=uri, sha256=hashlib.sha256(data).hexdigest(), width=width,
                       height=height, image=image)
