"""LoadImages: rows grouped by image, each image read and decoded once."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import apache_beam as beam
from apache_beam.metrics import Metrics

from claimdiff.config import ImageConfig
from claimdiff.errors import ImageError
from claimdiff.io.hosts import HostPolicy
from claimdiff.io.images import LoadedImage, load_image
from claimdiff.schemas.rows import InputRow, Stage
from claimdiff.transforms.failures import FAILURES, OK, StageOutputs, row_failed

NAMESPACE = "claimdiff.images"


class _LoadGroup(beam.DoFn):
    def __init__(self, run_id: str, config: ImageConfig) -> None:
        self._run_id = run_id
        self._config = config
        self._loaded = Metrics.counter(NAMESPACE, "images_loaded")
        self._failed = Metrics.counter(NAMESPACE, "images_failed")
        self._bytes = Metrics.distribution(NAMESPACE, "decoded_pixels")
        self._policy: HostPolicy | None = None

    def setup(self) -> None:
        self._policy = HostPolicy.of(self._config.allowed_hosts)

    def process(
        self, element: tuple[str, Iterable[InputRow]]
    ) -> Iterator[tuple[LoadedImage, InputRow] | beam.pvalue.TaggedOutput]:
        uri, rows = element
        try:
            image = load_image(uri, self._config, self._policy)
        except Exception as exc:
            # ImageError says what is wrong; anything else a hostile URI or file makes a library
            # raise (a NUL byte in a path, ...) still fails this image's rows, not the run.
            message = str(exc) if isinstance(exc, ImageError) else (
                f"unexpected error loading the image: {type(exc).__name__}: {exc}")
            self._failed.inc()
            for row in rows:
                yield beam.pvalue.TaggedOutput(FAILURES, row_failed(
                    row, run_id=self._run_id, stage=Stage.LOAD_IMAGE,
                    error_class=type(exc).__name__, message=message))
            return
        self._loaded.inc()
        self._bytes.update(image.width * image.height)
        for row in rows:
            yield image, row


@beam.typehints.with_input_types(InputRow)
class LoadImages(beam.PTransform):
    """`InputRow` -> `(LoadedImage, InputRow)` (ok) and `Failed` (failures, stage load_image).

    Rows are grouped by resolved image URI so each image is fetched, hashed and decoded once,
    however many actor captions it has. A missing, unreadable, truncated, oversized or non-image
    file fails every row of that image, each with its own failure row.
    """

    def __init__(self, run_id: str, config: ImageConfig) -> None:
        super().__init__()
        self._run_id = run_id
        self._config = config

    def expand(self, rows: beam.PCollection) -> StageOutputs:
        results = (
            rows
            | "KeyByImage" >> beam.Map(lambda row: (row.image_uri, row))
            | "GroupByImage" >> beam.GroupByKey()
            | "Load" >> beam.ParDo(_LoadGroup(self._run_id, self._config)).with_outputs(
                FAILURES, main=OK)
        )
        return StageOutputs(results[OK], results[FAILURES])
