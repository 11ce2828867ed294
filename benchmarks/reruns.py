"""B4 reruns: a rerun of an unchanged corpus with `--reuse`, against the first run.

The first run judges every row; the rerun reuses its answers by cache key. Reported: judge
calls of each (the rerun must make none), images decoded by each (the rerun needs none: its
rows are split off once an image is hashed) and the rerun's wall time relative to the first run
(target ≤ 10%). The judge is the `labels` backend, with a fixed pause per request standing in
for a GPU judge's latency (`--judge-ms`; 0 shows the pipeline's own floor: reading and hashing
images, Beam start-up, writing). The images are the synthetic scenes (small PNGs) or, with
`--photos`, photo-like JPEGs of that size in place of each scene (the labels judge answers
from the rows' gold labels, so the pixels change only the cost). Both runs go through
`run_judge`, as `claimdiff judge` does.

    python -m benchmarks.reruns [--quick] [--images N] [--judge-ms MS ...] [--photos WxH ...]
"""

from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path

from benchmarks.harness import Report, parser
from benchmarks.photos import encode, photo
from claimdiff.config import load_config
from claimdiff.judges.judge_setup import JudgeSetup
from claimdiff.pipelines.judge import JudgeJob, run_judge
from claimdiff.runners.options import pipeline_options
from claimdiff.synth import write_synthetic
from tests.support.judging import LoggedLabels, first_pass_requests


def with_photos(manifest: str, size: tuple[int, int], images: int) -> str:
    """The rows of the manifest's first `images` scenes, each scene swapped for a photo-like
    JPEG of `size`."""
    path = Path(manifest)
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    scenes = list(dict.fromkeys(row["image"] for row in rows))[:images]
    rows = [row for row in rows if row["image"] in scenes]
    photos: dict[str, str] = {}
    for row in rows:
        if row["image"] not in photos:
            name = f"images/photo_{len(photos):04d}_{size[0]}x{size[1]}.jpg"
            (path.parent / name).write_bytes(encode(photo(*size, seed=len(photos)), "JPEG"))
            photos[row["image"]] = name
        row["image"] = photos[row["image"]]
    edited = path.with_name(f"manifest-{size[0]}x{size[1]}.jsonl")
    edited.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return str(edited)


def one_run(manifest: str, output: Path, log: Path, pause_s: float,
            reuse: tuple[str, ...]) -> tuple[float, int, dict[str, int]]:
    def factory(setup: JudgeSetup) -> LoggedLabels:
        return LoggedLabels(log, pause_s)

    job = JudgeJob(manifest=manifest, output=str(output), config=load_config(None),
                   backend_factory=factory, reuse=reuse)
    started = time.perf_counter()
    result = run_judge(job, pipeline_options([], "local", None))
    seconds = time.perf_counter() - started
    assert result.status == "ok", result.status
    return seconds, first_pass_requests(log), result.counters


def main(argv: list[str] | None = None) -> None:
    p = parser(__doc__)
    p.add_argument("--images", type=int, default=None,
                   help="synthetic scenes (default 200, quick 6)")
    p.add_argument("--photo-images", type=int, default=None,
                   help="photos per size (default 40, quick 6)")
    p.add_argument("--judge-ms", type=float, nargs="+", default=[0.0, 50.0],
                   help="pause per judged row, in ms (one table row each)")
    p.add_argument("--photos", nargs="*", default=None, metavar="WxH",
                   help="photo sizes to run besides the scenes (default 4000x3000)")
    args = p.parse_args(argv)
    images = args.images or (6 if args.quick else 200)
    photo_images = min(images, args.photo_images or (6 if args.quick else 40))
    repeats = args.repeats or (1 if args.quick else 3)
    sizes = [tuple(int(n) for n in size.split("x")) for size in
             (args.photos if args.photos is not None else ["4000x3000"])]
    report = Report("reruns", {"quick": args.quick, "images": images,
                               "photo_images": photo_images, "repeats": repeats},
                    ["images", "judge ms/row", "rows", "first s", "rerun s", "rerun / first",
                     "first calls", "rerun calls", "first decoded", "rerun decoded"])
    with tempfile.TemporaryDirectory(prefix="claimdiff-b4-") as tmp:
        root = Path(tmp)
        scenes = write_synthetic(str(root / "data"), n=images, seed=0)
        corpora = {"scenes": scenes} | {
            f"{w}x{h} JPEG": with_photos(scenes, (w, h), photo_images) for w, h in sizes}
        for kind, manifest in corpora.items():
            for judge_ms in args.judge_ms:
                measured = measure(root / f"{kind}-{judge_ms}", manifest, judge_ms, repeats)
                report.add(images=kind, **{"judge ms/row": judge_ms}, **measured)
                label = f"{kind} at {judge_ms:g} ms/row"
                report.target(f"rerun judge calls, {label}", measured["rerun calls"], 0,
                              higher_is_better=False)
                if judge_ms > 0:  # with no judge time there is nothing for a rerun to save
                    report.target(f"rerun / first, {label}", measured["rerun / first"], 0.10,
                                  higher_is_better=False)
    report.notes.append(
        "A reused row's image is read and hashed (the key needs its sha256) and its header "
        "checked, not decoded; at 0 ms/row Beam's start-up, the reading and the writes are "
        "the whole cost of both runs, so the ratio reaches 10% only where judging dominates "
        "the first run.")
    report.finish(args.json)


def measure(base: Path, manifest: str, judge_ms: float, repeats: int) -> dict[str, float]:
    firsts, reruns = [], []
    for repeat in range(repeats):
        run = base / str(repeat)
        first_s, first_calls, first = one_run(manifest, run / "first", run / "first.log",
                                              judge_ms / 1000, ())
        rerun_s, rerun_calls, rerun = one_run(manifest, run / "rerun", run / "rerun.log",
                                              judge_ms / 1000, (str(run / "first"),))
        firsts.append(first_s)
        reruns.append(rerun_s)
    first_median, rerun_median = sorted(firsts)[len(firsts) // 2], sorted(reruns)[len(reruns) // 2]
    decoded = "claimdiff.images/images_loaded"
    return {"rows": first.get("claimdiff.manifest/rows_read", first_calls),
            "first s": first_median, "rerun s": rerun_median,
            "rerun / first": rerun_median / first_median,
            "first calls": first_calls, "rerun calls": rerun_calls,
            "first decoded": first.get(decoded, 0), "rerun decoded": rerun.get(decoded, 0)}


if __name__ == "__main__":
    main()
