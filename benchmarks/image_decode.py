"""B3: JPEG decoding at reduced size (Pillow's `draft`, the decoder's DCT scaling) then a final
resize, against a full decode then the same resize, at the judge's target size.

    python -m benchmarks.image_decode [--quick] [--max-side 1024]

Modes, interleaved on the same bytes:
- `full`: open, load every pixel, thumbnail to `max_side` (LANCZOS) — the plain alternative;
- `draft`: open, `draft(None, target)` (1/2, 1/4 or 1/8 scale, never below the target), load,
  resize to the same target size (LANCZOS): what claimdiff ran before its resize went bicubic;
- `claimdiff`: `claimdiff.io.images.decode`, what the pipeline runs (bounds, EXIF, RGB, draft,
  and a bicubic resize with the draft box, `images.RESAMPLE`).
The output of `draft` and `claimdiff` is compared with `full`'s: same size, and PSNR in dB.
"""

from __future__ import annotations

import io
import math

import numpy as np
from PIL import Image

from benchmarks.harness import Report, interleaved, median, parser
from benchmarks.photos import SIZES, encode, photo
from claimdiff.config import ImageConfig
from claimdiff.io.images import decode, fit_size


def full(data: bytes, side: int) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    image.load()
    image.thumbnail((side, side), Image.Resampling.LANCZOS)
    return image


def draft(data: bytes, side: int) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    target = fit_size(image.size, side)
    image.draft(None, target)
    image.load()
    return image.resize(target, Image.Resampling.LANCZOS, reducing_gap=2.0)


def psnr(a: Image.Image, b: Image.Image) -> float:
    if a.size != b.size:
        return float("nan")
    diff = np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64)
    mse = float(np.mean(diff * diff))
    return float("inf") if mse == 0 else 10 * math.log10(255 * 255 / mse)


def main() -> None:
    p = parser(__doc__)
    p.add_argument("--max-side", type=int, default=1024)
    args = p.parse_args()
    repeats = args.repeats or (2 if args.quick else 5)
    sizes = [SIZES[0], SIZES[-1]] if args.quick else SIZES
    config = ImageConfig(max_side=args.max_side)
    report = Report("image_decode", {"quick": args.quick, "repeats": repeats,
                                     "max_side": args.max_side},
                    ["image", "MB", "full ms", "draft ms", "claimdiff ms", "full/draft",
                     "full/claimdiff", "out size", "PSNR draft dB", "PSNR claimdiff dB"])
    ratio_12mp = None
    for name, width, height in sizes:
        data = encode(photo(width, height), "JPEG")
        times, outputs = interleaved({
            "full": lambda d=data: full(d, args.max_side),
            "draft": lambda d=data: draft(d, args.max_side),
            "claimdiff": lambda d=data: decode(d, config)[0],
        }, repeats)
        ms = {k: median(v) * 1000 for k, v in times.items()}
        reference = outputs["full"]
        report.add(**{"image": f"{name} {width}x{height}", "MB": len(data) / 2**20,
                      "full ms": ms["full"], "draft ms": ms["draft"],
                      "claimdiff ms": ms["claimdiff"], "full/draft": ms["full"] / ms["draft"],
                      "full/claimdiff": ms["full"] / ms["claimdiff"],
                      "out size": "x".join(map(str, outputs["claimdiff"].size)),
                      "PSNR draft dB": psnr(outputs["draft"], reference),
                      "PSNR claimdiff dB": psnr(outputs["claimdiff"], reference)})
        if width * height >= 12_000_000:
            ratio_12mp = ms["full"] / ms["claimdiff"]
    if ratio_12mp is not None:
        # the DCT-scaling limit at a 2x reduction (4000 px -> 1024 px decodes at 1/2): ~1.9x
        report.target("12 MP JPEG at 1024 px, full / claimdiff decode", ratio_12mp, 1.9, True)
    report.notes.append("PSNR is against the full-decode output at the same size; above ~40 dB "
                        "the difference is not visible")
    report.finish(args.json)


if __name__ == "__main__":
    main()
