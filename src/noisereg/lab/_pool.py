"""The local pool of worker processes that runs units of work for ``--jobs N``.

Workers are started with ``spawn`` (torch after ``fork`` can deadlock on locks held by threads
of the parent), compute on one intra-op thread, ignore SIGINT (Ctrl-C reaches the whole process
group: the parent alone decides to stop, and stops them) and exit when their parent dies, even
by SIGKILL, so no orphan keeps computing.
"""

from __future__ import annotations

import ctypes
import multiprocessing
import os
import signal
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager

_PR_SET_PDEATHSIG = 1  # from <sys/prctl.h>


def default_jobs() -> int:
    """The number of cores this process may use."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def _die_with(parent: int) -> None:
    """Have the kernel kill this process when its parent dies (Linux). A watching thread would
    do it anywhere, but a second Python thread made torch units 1.5x slower."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    except (OSError, AttributeError):  # no prctl: an orphan stops at its next unit
        return
    if os.getppid() != parent:  # died before the prctl call
        os._exit(1)


def _init_worker(parent: int) -> None:
    import torch

    from noisereg.lab._progress import silence

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _die_with(parent)
    torch.set_num_threads(1)
    silence()


@contextmanager
def local_pool(jobs: int) -> Iterator[ProcessPoolExecutor]:
    """A pool of ``jobs`` worker processes; on an exception (a failure, Ctrl-C, SIGTERM) the
    pending units are cancelled and the workers terminated before the exception goes on."""
    if jobs < 1:
        raise ValueError(f"jobs must be >= 1, got {jobs}")
    pool = ProcessPoolExecutor(jobs, mp_context=multiprocessing.get_context("spawn"),
                               initializer=_init_worker, initargs=(os.getpid(),))
    try:
        yield pool
    except BaseException:
        # Python 3.14 has pool.terminate_workers(); before it the processes are only reachable
        # through this attribute (None once the pool shut down).
        for process in list((pool._processes or {}).values()):
            process.terminate()
        pool.shutdown(wait=True, cancel_futures=True)
        raise
    pool.shutdown(wait=True)
