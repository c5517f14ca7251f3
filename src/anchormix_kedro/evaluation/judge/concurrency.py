"""Judge calls in flight at once: a bounded thread pool whose results keep the input order.

Judge calls wait on a server (I/O), so threads overlap them; each call keeps its own
timeout, retries and ``Retry-After`` waits. At most ``max_in_flight`` calls are submitted
at any time, so a run over many thousands of items holds only that many.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from typing import TypeVar

Task = TypeVar("Task")
Result = TypeVar("Result")

DEFAULT_MAX_IN_FLIGHT = 8


def check_max_in_flight(value: object) -> int:
    """``value`` as a whole number of calls of at least 1, or a ``ValueError`` saying why."""
    if isinstance(value, bool) or not isinstance(value, int | float) or value != int(value):
        raise ValueError(f"max_in_flight must be a whole number >= 1, got {value!r}")
    if int(value) < 1:
        raise ValueError(f"max_in_flight must be at least 1, got {value}")
    return int(value)


def map_bounded(
    function: Callable[[Task], Result],
    tasks: Sequence[Task],
    max_in_flight: int,
    on_done: Callable[[int], None] | None = None,
) -> list[Result]:
    """``function(task)`` for every task, at most ``max_in_flight`` at once, in task order.

    ``on_done(index)`` runs in the calling thread as each task finishes (e.g. to advance a
    progress bar). With ``max_in_flight=1`` the tasks run one after another in the calling
    thread. An exception raised by ``function`` cancels the tasks not yet started and is
    raised here once the calls in flight have ended.
    """
    max_in_flight = check_max_in_flight(max_in_flight)
    results: list[Result] = [None] * len(tasks)  # type: ignore[list-item]
    if max_in_flight == 1 or len(tasks) <= 1:
        for index, task in enumerate(tasks):
            results[index] = function(task)
            if on_done is not None:
                on_done(index)
        return results
    with ThreadPoolExecutor(
        max_workers=min(max_in_flight, len(tasks)), thread_name_prefix="judge"
    ) as pool:
        waiting = iter(range(len(tasks)))
        in_flight: dict[Future, int] = {}

        def submit_next() -> None:
            index = next(waiting, None)
            if index is not None:
                in_flight[pool.submit(function, tasks[index])] = index

        for _ in range(max_in_flight):
            submit_next()
        while in_flight:
            finished, _ = wait(in_flight, return_when=FIRST_COMPLETED)
            for future in finished:
                index = in_flight.pop(future)
                results[index] = future.result()  # re-raises the task's exception
                if on_done is not None:
                    on_done(index)
                submit_next()
    return results
