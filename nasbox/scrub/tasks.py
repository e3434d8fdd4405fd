"""The worker threads of one run, fed and drained by the main thread.

At most `limit` tasks are in flight (bounded memory); what each brings back is handed to
`apply` on the main thread, in the order the tasks finish. apply never submits: what it
wants run next it queues (nasbox.scrub.engine), and the main thread submits that between
batches.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait

from nasbox import stop
from nasbox.scrub.work import Done, Task, Worker


class Tasks:
    def __init__(self, pool: ThreadPoolExecutor, worker: Worker, apply: Callable[[Done], None], limit: int):
        self.pool = pool
        self.worker = worker
        self.apply = apply
        self.limit = limit
        self.in_flight: set[Future[list[Done]]] = set()

    def submit(self, relatives: Iterable[bytes], task: Task) -> None:
        """Run task for the files relatives (named in its problems if it fails; a generator
        costs nothing unless it does)."""
        stop.check()
        while len(self.in_flight) >= self.limit:
            self._finish(FIRST_COMPLETED)
        self.in_flight.add(self.pool.submit(self.worker.guarded, relatives, task))

    def drain(self) -> None:
        """Wait for every task in flight, applying what each brings back."""
        while self.in_flight:
            self._finish(FIRST_COMPLETED)

    def _finish(self, how: str) -> None:
        finished, _ = wait(self.in_flight, return_when=how)
        for future in finished:
            self.in_flight.discard(future)
            for done in future.result():
                self.apply(done)
