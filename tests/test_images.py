from __future__ import annotations

import hashlib
import io
from pathlib import Path

import fsspec
import pytest
from PIL import Image

from claimdiff.config import ImageConfig
from claimdiff.errors import DisallowedURIError, ImageError
from claimdiff.io.images import load_image, probe
from claimdiff.synth.render import png_bytes

CONFIG = ImageConfig(max_side=64, max_decode_pixels=512 * 512)


def _write(path: Path, data: bytes) -> str:
    path.write_bytes(data)
    return str(path)


def test_loads_hashes_and_bounds(tmp_path: Path):
    data = png_bytes(Image.new("RGB", (200, 100), (10, 200, 30)))
    loaded = load_image(_write(tmp_path / "a.png", data), CONFIG)
    assert loaded.sha256 == hashlib.sha256(data).hexdigest()
    assert (loaded.width, loaded.height) == (200, 100)
    assert loaded.image.size == (64, 32)
    assert loaded.image.mode == "RGB"
    assert loaded.image.getpixel((10, 10)) == (10, 200, 30)


def test_exif_orientation_is_applied(tmp_path: Path):
    image = Image.new("RGB", (40, 20), (255, 0, 0))
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90° clockwise to display
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", exif=exif)
    loaded = load_image(_write(tmp_path / "r.jpg", buffer.getvalue()), CONFIG)
    assert loaded.image.size == (20, 40)


def test_transparency_goes_on_white(tmp_path: Path):
    image = Image.new("RGBA", (8, 8), (0, 0, 0, 0))
    loaded = load_image(_write(tmp_path / "t.png", png_bytes(image)), CONFIG)
    assert loaded.image.getpixel((0, 0)) == (255, 255, 255)


def test_memory_filesystem():
    with fsspec.open("memory://imgs/m.png", "wb") as handle:
        handle.write(png_bytes(Image.new("L", (4, 4), 128)))
    assert load_image("memory://imgs/m.png", CONFIG).image.getpixel((0, 0)) == (128, 128, 128)


@pytest.mark.parametrize(
    ("name", "data", "message"),
    [
        ("corrupt.png", b"\x89PNG\r\n\x1a\n" + b"\x00" * 64, "corrupt or truncated|not an image"),
        ("truncated.png", png_bytes(Image.effect_noise((64, 64), 50))[:300],
         "corrupt or truncated"),
        ("text.png", b"this is not an image at all", "not an image"),
        ("empty.png", b"", "empty"),
    ],
)
def test_bad_files_are_image_errors(tmp_path: Path, name: str, data: bytes, message: str):
    with pytest.raises(ImageError, match=message):
        load_image(_write(tmp_path / name, data), CONFIG)


def test_decompression_bomb_is_refused_before_decoding(tmp_path: Path):
    # 4000x4000 of one colour compresses to a few KB but would decode to 48 MB
    bomb = png_bytes(Image.new("RGB", (4000, 4000)))
    assert len(bomb) < 100_000
    with pytest.raises(ImageError, match="decompression bomb"):
        load_image(_write(tmp_path / "bomb.png", bomb), CONFIG)
    with pytest.raises(ImageError, match="decompression bomb"):
        probe(bomb, CONFIG)


def test_missing_oversized_and_disallowed(tmp_path: Path):
    with pytest.raises(ImageError, match="image not found"):
        load_image(str(tmp_path / "nope.png"), CONFIG)
    with pytest.raises(ImageError, match=r"larger than images\.max_bytes"):
        load_image(_write(tmp_path / "big.png", png_bytes(Image.effect_noise((64, 64), 50))),
                   ImageConfig(max_bytes=100))
    with pytest.raises(DisallowedURIError):
        load_image("http://127.0.0.1:9/a.png", CONFIG)


def test_random_corruption_only_ever_raises_image_error(tmp_path: Path):
    """Hostile bytes: whatever a decoder raises, the row fails cleanly and the run goes on."""
    import random

    rng = random.Random(0)
    sources = []
    for fmt in ("PNG", "JPEG", "GIF", "BMP", "TIFF", "WEBP"):
        buffer = io.BytesIO()
        Image.effect_noise((24, 24), 40).convert("RGB").save(buffer, format=fmt)
        sources.append(buffer.getvalue())
    outcomes = {"ok": 0, "error": 0, "probe error": 0}
    for trial in range(300):
        data = bytearray(rng.choice(sources))
        for _ in range(rng.randint(1, 8)):
            data[rng.randrange(len(data))] = rng.randrange(256)
        if rng.random() < 0.3:
            data = data[: rng.randrange(1, len(data))]
        try:
            load_image(_write(tmp_path / f"f{trial}", bytes(data)), CONFIG)
        except ImageError:
            outcomes["error"] += 1
        else:
            outcomes["ok"] += 1
        try:  # the header alone (a reused row's image) fails only as an ImageError too
            probe(bytes(data), CONFIG)
        except ImageError:
            outcomes["probe error"] += 1
    assert outcomes["error"] > 0
    assert 0 < outcomes["probe error"] <= outcomes["error"]


@pytest.mark.parametrize("warnings_as", ["error", "ignore"])
def test_corrupt_exif_only_ever_raises_image_error(tmp_path: Path, warnings_as: str):
    """Corrupt EXIF makes Pillow raise struct.error, KeyError, ... (or warn, outside pytest's
    warnings-as-errors): whichever, one bad image, never a crashed run."""
    import random
    import warnings

    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: rotate
    exif[0x010F] = "camera"
    buffer = io.BytesIO()
    Image.effect_noise((24, 24), 40).convert("RGB").save(buffer, format="JPEG",
                                                          exif=exif.tobytes())
    source = buffer.getvalue()
    start = source.index(b"Exif") + 6
    rng = random.Random(1)
    loaded = failed = 0
    with warnings.catch_warnings():
        warnings.simplefilter(warnings_as)
        for trial in range(150):
            data = bytearray(source)
            for _ in range(rng.randint(1, 4)):
                data[rng.randrange(start, start + 80)] = rng.randrange(256)
            try:
                load_image(_write(tmp_path / f"e{trial}.jpg", bytes(data)), CONFIG)
            except ImageError:
                failed += 1
            else:
                loaded += 1
    assert loaded + failed == 150
    assert failed > 0  # the corruption does reach the EXIF reader


def test_hostile_uris_are_image_errors():
    with pytest.raises(ImageError, match="not readable"):
        load_image("/tmp/a\x00b.png", CONFIG)


@pytest.mark.parametrize("kind", ["fifo", "directory", "char-device", "socket",
                                  "symlink-to-device"])
def test_only_regular_files_are_read(tmp_path, kind: str):
    """A FIFO named like an image would block the read for ever; a device never ends."""
    import os
    import socket

    from claimdiff.config import ImageConfig
    from claimdiff.io.images import read_bytes

    path = tmp_path / "a.png"
    if kind == "fifo":
        os.mkfifo(path)
    elif kind == "directory":
        path.mkdir()
    elif kind in ("char-device", "symlink-to-device"):
        path.symlink_to("/dev/zero")
    with socket.socket(socket.AF_UNIX) as server:
        if kind == "socket":
            server.bind(str(path))
        with pytest.raises(ImageError, match=r"not a regular file|URI is a directory"):
            read_bytes(str(path), ImageConfig())
        with pytest.raises(ImageError):
            read_bytes(f"file://{path}", ImageConfig())


def test_byte_limit_per_image(tmp_path):
    from claimdiff.config import ImageConfig
    from claimdiff.io.images import read_bytes

    path = tmp_path / "big.png"
    path.write_bytes(b"x" * 2000)
    with pytest.raises(ImageError, match=r"larger than images.max_bytes=1999"):
        read_bytes(str(path), ImageConfig(max_bytes=1999))
    assert len(read_bytes(str(path), ImageConfig(max_bytes=2000))) == 2000


def _noisy_jpeg(size: tuple[int, int], orientation: int | None = None) -> bytes:
    import numpy as np

    # detail coarser than the 64 px target, like a photo seen small (detail finer than the
    # target is aliased differently by any two downscalers, so it compares nothing)
    coarse = (max(2, size[1] // 40), max(2, size[0] // 40), 3)
    pixels = np.random.default_rng(0).integers(0, 256, size=coarse, dtype=np.uint8)
    image = Image.fromarray(pixels, "RGB").resize(size, Image.Resampling.BICUBIC)
    exif = Image.Exif()
    if orientation is not None:
        exif[0x0112] = orientation
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=90, exif=exif)
    return buffer.getvalue()


def _full_decode(data: bytes, max_side: int) -> Image.Image:
    """The reference: every pixel decoded, EXIF applied, then thumbnailed."""
    from PIL import ImageOps

    image = Image.open(io.BytesIO(data))
    image.load()
    upright = ImageOps.exif_transpose(image)
    upright.thumbnail((max_side, max_side), Image.Resampling.LANCZOS)
    return upright


@pytest.mark.parametrize(("size", "orientation"), [
    ((401, 299), None), ((299, 401), None), ((517, 130), 6), ((333, 250), 8), ((640, 641), 5),
    ((401, 299), 2), ((299, 401), 4), ((517, 130), 7),
    ((130, 517), 3)])
def test_draft_decoding_ends_at_the_full_decode_size_and_pixels(tmp_path: Path, size, orientation):
    # reduced-size JPEG decoding (1/2..1/8 DCT scaling) then the final resize: the same size as a
    # full decode to the pixel, the same sha256 (of the file), and nearly the same pixels
    import numpy as np

    config = ImageConfig(max_side=64, max_decode_pixels=1024 * 1024)
    data = _noisy_jpeg(size, orientation)
    loaded = load_image(_write(tmp_path / "p.jpg", data), config)
    reference = _full_decode(data, 64)
    assert loaded.image.size == reference.size
    assert (loaded.width, loaded.height) == size  # the stored size is the file's own
    assert loaded.sha256 == hashlib.sha256(data).hexdigest()
    diff = np.asarray(loaded.image, dtype=np.float64) - np.asarray(reference, dtype=np.float64)
    assert np.sqrt(np.mean(diff * diff)) < 2  # ~0.7 measured; without the box 5-10


def test_jpeg_smaller_than_the_target_is_not_resized(tmp_path: Path):
    data = _noisy_jpeg((60, 40))
    loaded = load_image(_write(tmp_path / "s.jpg", data), CONFIG)
    assert loaded.image.size == (60, 40)
    assert loaded.image.tobytes() == _full_decode(data, 64).tobytes()
