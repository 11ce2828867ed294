"""B2: the CPU side of judging, per sample, with the judge itself excluded from the timing.

    python -m benchmarks.cpu_side [--quick] [--images 8] [--actors 4]

A sample is one (image, caption) row; an image carries `--actors` captions, decoded once. The
stages are timed one by one on the same rows, in the order the pipeline runs them: read (file
bytes), decode (sha256, JPEG/PNG decode, EXIF, RGB, resize to `images.max_side`), prompt (the
request: template, cache key), parse (the judge's answer text to the typed output; the answers
come from the `labels` judge, made before the clock starts), outcomes (differences, statistics),
rewards (every preset), write (Arrow table and zstd Parquet of the difference rows). Images are
generated photo-like JPEGs and PNGs from 0.3 to 12 MP; captions are made long (about 1,500
characters) by a shared paragraph on reference and caption alike, so the gold stays true.
Single-threaded, so samples/s is per core. Target: >= 50 samples/s per core at 12 MP.
"""

from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from benchmarks.harness import Report, parser
from benchmarks.photos import SIZES, encode, photo
from claimdiff.config import ClaimdiffConfig, load_config
from claimdiff.io.images import LoadedImage, decode, read_bytes
from claimdiff.io.manifest import iter_manifest, validate_row
from claimdiff.judges.backends.base import JudgeRequest, Role
from claimdiff.judges.backends.labels import LabelsBackend
from claimdiff.judges.formats import parser_for
from claimdiff.judges.judge_setup import JudgeSetup
from claimdiff.rewards.presets import compute_rewards
from claimdiff.rewards.stats import Provenance, derive
from claimdiff.rewards.taxonomy import TypeMapper
from claimdiff.schemas.arrow import to_table
from claimdiff.schemas.rows import DifferenceRow, InputRow
from claimdiff.synth.sample import write_sample
from claimdiff.transforms.judge import prepare

STAGES = ["read", "decode", "prompt", "parse", "outcomes", "rewards", "write"]
PARAGRAPH = (" The scene is lit from the upper left, with soft shadows falling to the right of "
             "every shape; the background is a smooth gradient that runs from a pale tone at "
             "the top to a darker one near the bottom edge, and a thin frame of slightly "
             "different colour surrounds the whole picture.") * 5


def corpus(root: Path, images: int, actors: int, size: tuple[int, int], fmt: str
           ) -> tuple[str, list[InputRow]]:
    manifest = write_sample(str(root / "sample"), images=images, actors=actors, broken=False)
    records = [record for _, record in iter_manifest(manifest)]
    suffix = "jpg" if fmt == "JPEG" else "png"
    paths: dict[str, str] = {}
    lines = []
    for record in records:
        assert isinstance(record, dict)
        if record["image"] not in paths:
            path = root / f"photo_{len(paths):04d}.{suffix}"
            path.write_bytes(encode(photo(*size, seed=len(paths)), fmt))
            paths[record["image"]] = str(path)
        record = {**record, "image": paths[record["image"]],
                  "reference": record["reference"] + PARAGRAPH,
                  "caption": record["caption"] + PARAGRAPH}
        lines.append(json.dumps(record))
    out = root / "long.jsonl"
    out.write_text("\n".join(lines) + "\n")
    rows = []
    for index, record in iter_manifest(str(out)):
        assert isinstance(record, dict)
        rows.append(validate_row(record, manifest=str(out), row_index=index,
                                 allowed_schemes=["file"]))
    return str(out), rows


def measure(rows: list[InputRow], config: ClaimdiffConfig, setup: JudgeSetup, out: Path
            ) -> dict[str, float]:
    """Seconds per stage for all rows."""
    spent = dict.fromkeys(STAGES, 0.0)
    mapper = TypeMapper(config.taxonomy)
    parse = parser_for(setup.config.output_format)
    clock = time.perf_counter

    t = clock()
    data = {uri: read_bytes(uri, config.images) for uri in dict.fromkeys(r.image_uri for r in rows)}
    spent["read"] = clock() - t

    import hashlib

    t = clock()
    images = {}
    for uri, raw in data.items():  # once per image, not once per caption
        image, width, height = decode(raw, config.images)
        images[uri] = LoadedImage(uri=uri, sha256=hashlib.sha256(raw).hexdigest(), width=width,
                                  height=height, image=image)
    spent["decode"] = clock() - t

    t = clock()
    items = [prepare((images[row.image_uri], row), setup) for row in rows]
    spent["prompt"] = clock() - t

    # the judge, untimed: the labels judge's answer text for each row
    answers = LabelsBackend(setup.config.output_format).judge(
        [JudgeRequest(key=i.cache_key, prompt=i.prompt, image=i.image.image, role=Role.JUDGE,
                      gold=i.row.gold) for i in items], setup.first_decoding)
    t = clock()
    outputs = [parse(a.text) for a in answers]
    spent["parse"] = clock() - t

    t = clock()
    derived = []
    for item, output in zip(items, outputs, strict=True):
        provenance = Provenance(run_id="bench", image_sha256=item.image.sha256,
                                judge_model=setup.model_id, prompt_version=setup.prompt_version,
                                decoding=setup.decoding, cache_key=item.cache_key, attempts=1)
        derived.append(derive(item.row, output, provenance, config, mapper))
    spent["outcomes"] = clock() - t

    t = clock()
    for _, stats in derived:
        compute_rewards(stats, config.rewards, config.severity)
    spent["rewards"] = clock() - t

    t = clock()
    differences: list[DifferenceRow] = [d for found, _ in derived for d in found]
    pq.write_table(to_table(differences, DifferenceRow), out / "differences.parquet",
                   compression="zstd")
    spent["write"] = clock() - t
    return spent


def main() -> None:
    p = parser(__doc__)
    p.add_argument("--images", type=int, default=None)
    p.add_argument("--actors", type=int, default=4)
    args = p.parse_args()
    images = args.images or (2 if args.quick else 8)
    sizes = [SIZES[0], SIZES[-1]] if args.quick else SIZES
    formats = ["JPEG"] if args.quick else ["JPEG", "PNG"]
    config = load_config(None, {})
    setup = JudgeSetup.build(config, check_model=False)
    report = Report("cpu_side", {"quick": args.quick, "images": images, "actors": args.actors},
                    ["image", *[f"{s} ms" for s in STAGES], "total ms", "samples/s/core"])
    at_12mp: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for fmt in formats:
            for name, width, height in sizes:
                root = Path(tmp) / f"{fmt}-{name}"
                root.mkdir()
                _, rows = corpus(root, images, args.actors, (width, height), fmt)
                spent = measure(rows, config, setup, root)
                per = {s: spent[s] / len(rows) * 1000 for s in STAGES}
                total = sum(per.values())
                row: dict[str, Any] = {"image": f"{fmt} {name}"}
                row.update({f"{s} ms": per[s] for s in STAGES})
                row.update({"total ms": total, "samples/s/core": 1000 / total})
                report.add(**row)
                if width * height >= 12_000_000:
                    at_12mp[fmt] = 1000 / total
    for fmt, rate in at_12mp.items():
        report.target(f"{fmt} 12 MP, {args.actors} captions per image: samples/s/core", rate,
                      50, True)
    report.notes.append(f"{args.actors} captions per image share one decode; per-sample decode "
                        "cost is the per-image cost divided by that")
    report.finish(args.json)


if __name__ == "__main__":
    main()
