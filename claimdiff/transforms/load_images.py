"""LoadImages: rows grouped by image, each image read once and decoded once, and only where a
row of it goes to the judge."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator, Mapping
from typing import NamedTuple

import apache_beam as beam
from apache_beam.metrics import Metrics

from claimdiff.config import ImageConfig
from claimdiff.errors import ImageError
from claimdiff.io.hosts import HostPolicy
from claimdiff.io.images import ImageRef, LoadedImage, decode, probe, read_bytes
from claimdiff.judges.events import NAMESPACE as JUDGE_NAMESPACE
from claimdiff.judges.judge_setup import JudgeSetup
from claimdiff.judges.records import JudgeResult
from claimdiff.schemas.rows import InputRow, Stage
from claimdiff.transforms.failures import FAILURES, OK, Failed, row_failed
from claimdiff.transforms.reuse import REUSED, TO_JUDGE, ReuseByKey

NAMESPACE = "claimdiff.images"


class ImageOutputs(NamedTuple):
    """What `LoadImages` returns: rows to judge with their decoded image, the rows that failed
    here, and the answers reused from earlier runs (None where nothing is reused)."""

    ok: beam.PCollection
    failures: beam.PCollection
    reused: beam.PCollection | None


class _LoadGroup(beam.DoFn):
    def __init__(self, run_id: str, config: ImageConfig, reuse: ReuseByKey | None) -> None:
        self._run_id = run_id
        self._config = config
        self._reuse = reuse
        self._loaded = Metrics.counter(NAMESPACE, "images_loaded")
        self._not_decoded = Metrics.counter(NAMESPACE, "images_not_decoded")
        self._failed = Metrics.counter(NAMESPACE, "images_failed")
        self._bytes = Metrics.distribution(NAMESPACE, "decoded_pixels")
        self._reused = Metrics.counter(JUDGE_NAMESPACE, REUSED)
        self._to_judge = Metrics.counter(JUDGE_NAMESPACE, TO_JUDGE)
        self._policy: HostPolicy | None = None

    def setup(self) -> None:
        self._policy = HostPolicy.of(self._config.allowed_hosts)

    def process(self, element: tuple[str, Iterable[InputRow]],
                known: Mapping[str, str] | None = None
                ) -> Iterator[tuple[LoadedImage, InputRow] | beam.pvalue.TaggedOutput]:
        uri, group = element
        pending = list(group)  # the rows this image still owes an outcome
        reused: list[JudgeResult] = []
        image: LoadedImage | None = None
        failure: Exception | None = None
        try:
            data = read_bytes(uri, self._config, self._policy)
            sha256 = hashlib.sha256(data).hexdigest()
            if self._reuse is not None and known:
                # the header is checked as a decode would check it (a bound lowered since the
                # earlier run still fails the image); the pixels of a reused row are not needed
                width, height = probe(data, self._config)
                reused, pending = self._reuse.split(ImageRef(uri, sha256, width, height),
                                                    pending, known)
            if pending:
                pixels, width, height = decode(data, self._config)
                image = LoadedImage(uri=uri, sha256=sha256, width=width, height=height,
                                    image=pixels)
        except Exception as exc:
            failure = exc
        # answers split off before a failed decode still stand: their image was judged
        self._reused.inc(len(reused))
        for result in reused:
            yield beam.pvalue.TaggedOutput(REUSED, result)
        if failure is not None:
            self._failed.inc()
            for failed in self._failures(pending, failure):
                yield beam.pvalue.TaggedOutput(FAILURES, failed)
            return
        if image is None:
            self._not_decoded.inc()
            return
        self._loaded.inc()
        self._bytes.update(image.width * image.height)
        if self._reuse is not None:
            # counted once decoded: a row whose image fails goes to failures, not the judge
            self._to_judge.inc(len(pending))
        for row in pending:
            yield image, row

    def _failures(self, rows: Iterable[InputRow], exc: Exception) -> Iterator[Failed]:
        # ImageError says what is wrong; anything else a hostile URI or file makes a library
        # raise (a NUL byte in a path, ...) still fails this image's rows, not the run.
        message = str(exc) if isinstance(exc, ImageError) else (
            f"unexpected error loading the image: {type(exc).__name__}: {exc}")
        for row in rows:
            yield row_failed(row, run_id=self._run_id, stage=Stage.LOAD_IMAGE,
                             error_class=type(exc).__name__, message=message)


@beam.typehints.with_input_types(InputRow)
class LoadImages(beam.PTransform):
    """`InputRow` -> `(LoadedImage, InputRow)` (ok), `Failed` (failures, stage load_image) and,
    with earlier answers, `JudgeResult` (reused).

    Rows are grouped by resolved image URI so each image is fetched, hashed and decoded once,
    however many actor captions it has. A missing, unreadable, truncated, oversized or non-image
    file fails every row of that image, each with its own failure row. With `known` answers
    (`KnownAnswers`) a row whose cache key has one becomes that answer (`ReuseByKey`) once the
    image's sha256 is known, and an image none of whose rows is left to judge is not decoded.
    """

    def __init__(self, run_id: str, config: ImageConfig,
                 known: beam.PCollection | None = None,
                 setup: JudgeSetup | None = None) -> None:
        super().__init__()
        if known is not None and setup is None:
            raise ValueError("reusing known answers needs the run's JudgeSetup (the cache key)")
        self._run_id = run_id
        self._config = config
        self._known = known
        self._reuse = ReuseByKey(setup) if known is not None and setup is not None else None

    def expand(self, rows: beam.PCollection) -> ImageOutputs:
        grouped = (
            rows
            | "KeyByImage" >> beam.Map(lambda row: (row.image_uri, row))
            | "GroupByImage" >> beam.GroupByKey()
        )
        load = beam.ParDo(_LoadGroup(self._run_id, self._config, self._reuse),
                          *([beam.pvalue.AsDict(self._known)] if self._known is not None else []))
        if self._known is None:
            results = grouped | "Load" >> load.with_outputs(FAILURES, main=OK)
            return ImageOutputs(results[OK], results[FAILURES], None)
        results = grouped | "Load" >> load.with_outputs(FAILURES, REUSED, main=OK)
        return ImageOutputs(results[OK], results[FAILURES], results[REUSED])
