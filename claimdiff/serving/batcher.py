"""Concurrent requests gathered into judge batches.

An RL trainer sends one request per completion, many at once; a judge is fastest on a batch.
`Batcher` queues requests and hands the `RewardService` up to `max_batch` of them at a time:
the first request of a batch waits at most `max_wait_s` for company, and while a batch is
being judged the next one fills. At most `max_pending` requests are queued or being judged;
one more is refused at once (`BusyError`), so a burst is told to come back rather than piling
up without bound.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from claimdiff.serving.rewards import RewardRequest, RewardService, Score

log = logging.getLogger(__name__)


RECENT_BATCHES = 256  # batch sizes /health reports

class BusyError(Exception):
    """More requests are pending than `serve.max_pending`."""


class BatchFailedError(Exception):
    """The backend failed the whole batch this request was in (retryable)."""


@dataclass
class _Pending:
    request: RewardRequest
    future: asyncio.Future[Score]


class Batcher:
    def __init__(self, service: RewardService, *, max_batch: int, max_wait_s: float,
                 max_pending: int) -> None:
        self._service = service
        self._max_batch = max_batch
        self._max_wait_s = max_wait_s
        self._max_pending = max_pending
        self._queue: asyncio.Queue[_Pending] = asyncio.Queue()
        self._pending = 0
        self._worker: asyncio.Task[None] | None = None
        # one thread: the service judges one batch at a time, and the event loop stays free
        # to accept (and refuse) requests meanwhile
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="claimdiff-judge")
        # batches judged, and the sizes of the latest ones (bounded: the server runs for days)
        self.batches = 0
        self.recent_batch_sizes: deque[int] = deque(maxlen=RECENT_BATCHES)

    @property
    def pending(self) -> int:
        return self._pending

    def start(self) -> None:
        self._worker = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        if self._worker is not None:
            self._worker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._worker
        self._executor.shutdown(wait=True)

    async def submit(self, request: RewardRequest) -> Score:
        if self._pending >= self._max_pending:
            raise BusyError(f"{self._pending} requests pending (serve.max_pending="
                            f"{self._max_pending}); retry later")
        self._pending += 1
        future: asyncio.Future[Score] = asyncio.get_running_loop().create_future()
        try:
            self._queue.put_nowait(_Pending(request, future))
            return await future
        finally:
            self._pending -= 1

    async def _gather(self) -> list[_Pending]:
        batch = [await self._queue.get()]
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._max_wait_s
        while len(batch) < self._max_batch:
            if not self._queue.empty():  # one event loop: nothing takes it in between
                batch.append(self._queue.get_nowait())
                continue
            left = deadline - loop.time()
            if left <= 0:
                break
            try:
                batch.append(await asyncio.wait_for(self._queue.get(), left))
            except TimeoutError:
                break
        # a request whose client gave up (timeout, disconnect) is not judged
        return [p for p in batch if not p.future.done()]

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            batch = await self._gather()
            if not batch:
                continue
            self.batches += 1
            self.recent_batch_sizes.append(len(batch))
            requests = [p.request for p in batch]
            try:
                scores = await loop.run_in_executor(self._executor, self._service.score,
                                                    requests)
            except Exception as exc:
                log.warning("the judge failed a batch of %d requests: %s: %s", len(batch),
                            type(exc).__name__, exc)
                for p in batch:
                    if not p.future.done():
                        p.future.set_exception(BatchFailedError(
                            f"the judge failed the whole batch: {type(exc).__name__}: {exc}"))
                continue
            for p, score in zip(batch, scores, strict=True):
                if not p.future.done():
                    p.future.set_result(score)
