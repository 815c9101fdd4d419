"""Units of work on a Ray cluster: ``--ray`` starts one on this machine for the run (the
embedded default), ``--ray=ADDRESS`` joins one that already runs.

:class:`RayExecutor` is a :class:`concurrent.futures.Executor` over Ray tasks, so the runner
needs nothing else: each unit is a task of one CPU, and its record, or the exception it raised,
comes back to this process, the results folder's one writer. Cancelling a future cancels its
task (a running one is killed); leaving the executor's block on an exception cancels every
unit, and closing it stops the local cluster.

The local cluster stays on this machine and sends nothing out (seen with Ray 2.60 under
``strace``: no connection but to 127.0.0.1):

- Ray's single-node mode (``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0``), in which every server
  listens on 127.0.0.1. On Linux ``_node_ip_address="127.0.0.1"`` alone is not enough: Ray
  replaces it by the address of the default route and listens on every interface. The
  executor checks the node address it got and refuses any other.
- Usage statistics off (``RAY_USAGE_STATS_ENABLED=0``) and no dashboard. Ray still starts a
  usage-statistics process that asks the cloud metadata servers (169.254.169.254,
  metadata.google.internal) what cloud it runs on, before it reads that statistics are off;
  the cluster's processes get an HTTP(S) proxy on a closed loopback port, with loopback
  exempted, so those requests fail at once without leaving the machine.
"""

from __future__ import annotations

import os
import re
import signal
from collections.abc import Callable, Iterator
from concurrent import futures
from concurrent.futures import Executor, Future, InvalidStateError
from contextlib import ExitStack, contextmanager
from functools import partial
from typing import Any

from noisereg._extras import require

LOOPBACK = "127.0.0.1"
# Settings of the local cluster, given to every process it starts; see the module docstring.
_NOWHERE = "http://127.0.0.1:9"  # a proxy on loopback that refuses at once
LOCAL_ENV = {"RAY_USAGE_STATS_ENABLED": "0", "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0",
             **{name: _NOWHERE for name in ("http_proxy", "HTTP_PROXY", "https_proxy",
                                            "HTTPS_PROXY")},
             **{name: "127.0.0.1,localhost,::1" for name in ("no_proxy", "NO_PROXY")}}
_ADDRESS = re.compile(r"auto|(ray://)?[A-Za-z0-9.\-\[\]:]+:[0-9]{1,5}")
_OBJECT_STORE_BYTES = 256 * 2**20  # units return small records: Ray's default is 30% of RAM


def check_address(address: str) -> str:
    """``address`` if it names a running cluster: ``auto``, ``HOST:PORT`` or
    ``ray://HOST:PORT``; else a ValueError saying what is allowed."""
    if not isinstance(address, str) or not _ADDRESS.fullmatch(address):
        raise ValueError(f"a Ray address must be 'auto', HOST:PORT or ray://HOST:PORT, got "
                         f"{address!r}")
    return address


@contextmanager
def _environment(values: dict[str, str]) -> Iterator[None]:
    """``os.environ`` with ``values`` set inside the block, as it was after it."""
    previous = {key: os.environ.get(key) for key in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in previous.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def _call(fn: Callable[..., Any], args: tuple, kwargs: dict[str, Any]) -> Any:
    """A unit, run in a Ray worker."""
    return fn(*args, **kwargs)


def _settle(future: Future, done: Future) -> None:
    """Hand the outcome of a Ray task (``done``) to the future :meth:`RayExecutor.submit`
    returned: the unit's own exception, not Ray's wrapper holding it and the remote traceback
    as text."""
    err = done.exception()
    cause = getattr(err, "cause", None)  # a RayTaskError's: what the unit raised
    try:
        if err is None:
            future.set_result(done.result())
        else:
            future.set_exception(cause if isinstance(cause, BaseException) else err)
    except InvalidStateError:  # cancelled meanwhile: nobody waits for it
        pass


class RayExecutor(Executor):
    """Runs each submitted call as a Ray task of one CPU.

    ``address`` None starts a local cluster of ``num_cpus`` CPUs (default: the machine's) on
    loopback, stopped by :meth:`shutdown`; otherwise the driver joins the running cluster at
    ``address`` (see :func:`check_address`) and :meth:`shutdown` leaves it, which also ends
    the tasks this process submitted. The functions and arguments are pickled to the workers,
    which need the same ``noisereg`` installed.
    """

    def __init__(self, address: str | None = None, *, num_cpus: int | None = None) -> None:
        if address is not None:
            check_address(address)
            if num_cpus is not None:
                raise ValueError("num_cpus is for a local cluster; a running cluster at "
                                 f"{address!r} has its own")
        elif num_cpus is not None and (isinstance(num_cpus, bool) or not
                                       isinstance(num_cpus, int) or num_cpus < 1):
            raise ValueError(f"num_cpus must be an integer >= 1, got {num_cpus!r}")
        # The environment the cluster's processes start with, set before Ray is imported:
        # it reads RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER then.
        self._env = ExitStack()
        self._env.enter_context(_environment(LOCAL_ENV if address is None else {}))
        try:
            ray = require("ray", "ray", "running units on Ray")
            if ray.is_initialized():
                raise RuntimeError("Ray is already initialized in this process; a "
                                   "RayExecutor connects and disconnects it itself")
        except BaseException:
            self._env.close()
            raise
        self._ray = ray
        # ray.init replaces the SIGTERM handler (with sys.exit); the CLI's, which stops like
        # Ctrl-C, is put back.
        handler = signal.getsignal(signal.SIGTERM)
        try:
            if address is None:
                context = ray.init(address="local", num_cpus=num_cpus, num_gpus=0,
                                   include_dashboard=False, _node_ip_address=LOOPBACK,
                                   object_store_memory=_OBJECT_STORE_BYTES,
                                   log_to_driver=False, configure_logging=False)
                node = context.address_info["node_ip_address"]
                if node != LOOPBACK:  # ray was imported before: it read the mode then
                    raise RuntimeError(
                        f"the local Ray cluster listens on {node}, not on {LOOPBACK} only: "
                        "set RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0 before Ray is imported")
            else:
                ray.init(address=address, log_to_driver=False, configure_logging=False)
        except BaseException:
            self._close()
            raise
        finally:
            if handler is not None:
                signal.signal(signal.SIGTERM, handler)
        self._task = ray.remote(num_cpus=1)(_call)
        self._futures: dict[Future, Any] = {}
        self._closed = False

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future:
        if self._closed:
            raise RuntimeError("cannot submit to a RayExecutor after shutdown")
        ref = self._task.remote(fn, args, kwargs)
        future: Future = Future()
        self._futures[future] = ref
        future.add_done_callback(self._cancelled)
        ref.future().add_done_callback(partial(_settle, future))
        return future

    def _cancelled(self, future: Future) -> None:
        """A cancelled future's task is cancelled too, killed if it runs."""
        ref = self._futures.pop(future, None)
        if future.cancelled() and ref is not None and not self._closed:
            self._ray.cancel(ref, force=True)

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        """Wait for the submitted units (``wait``) or cancel those not finished
        (``cancel_futures``), then stop the local cluster or leave the joined one."""
        if self._closed:
            return
        pending = list(self._futures)
        if cancel_futures:
            for future in pending:
                future.cancel()
        elif wait:
            futures.wait(pending)
        self._closed = True
        self._close()

    def _close(self) -> None:
        self._ray.shutdown()
        self._env.close()

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> bool:
        # On an exception (a failure, Ctrl-C, SIGTERM) the units not finished are cancelled.
        self.shutdown(wait=exc_type is None, cancel_futures=exc_type is not None)
        return False
