"""Where many training runs go: Ray tasks, on a Ray started here or on a running cluster, or,
without Ray, one after another in this process. `nld sweep` and `nld report` hand their runs
to `run_jobs`; a job that fails comes back with its error, and the others go on."""

from __future__ import annotations

import socket
import sys
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from nld.errors import NLDError

INSTALL = "pip install 'nld[cluster]'"


@dataclass(frozen=True)
class Job:
    key: str
    fn: Callable[..., Any]  # module level: Ray's workers import it by name
    args: tuple[Any, ...]


@dataclass(frozen=True)
class Done:
    job: Job
    result: Any = None
    error: str | None = None  # why it failed: its exception, or its worker's death


def ray_or_none(wanted: bool | None, why: str = "") -> Any:
    """The `ray` module when it is `wanted` (None: when it is installed); None to run here,
    with a note on stderr when Ray was not `wanted` explicitly and is missing."""
    if wanted is False:
        return None
    try:
        import ray
    except ImportError:
        if wanted:
            raise NLDError(f"Ray is not installed: {INSTALL}, or leave out --ray") from None
        print(f"nld: Ray is not installed ({INSTALL}): {why}", file=sys.stderr)
        return None
    return ray


def run_jobs(
    jobs: list[Job],
    *,
    ray: Any = None,
    address: str | None = None,
    num_cpus: float = 1,
    num_gpus: float = 0,
) -> Iterator[Done]:
    """Each job's outcome as it ends: through `ray` (each task asking for `num_cpus` and
    `num_gpus`, not retried) when given, else one after another here."""
    if ray is None:
        for job in jobs:
            try:
                yield Done(job, job.fn(*job.args))
            except KeyboardInterrupt:
                raise
            except Exception as e:
                yield Done(job, error=f"{type(e).__name__}: {e}")
        return
    started_here = not ray.is_initialized()
    if started_here:
        if address:
            _reachable(address)  # ray.init would wait on a wrong address for many minutes
        try:
            ray.init(
                address=address,
                include_dashboard=False,
                log_to_driver=False,
                logging_level="WARNING",
            )
        except (ConnectionError, RuntimeError, ValueError) as e:
            where = f"the Ray cluster at {address}" if address else "a local Ray"
            raise NLDError(f"cannot start or reach {where}: {e}") from None
    try:
        _fits(ray.cluster_resources(), num_cpus, num_gpus)  # else Ray waits for them forever
    except NLDError:
        if started_here:
            ray.shutdown()
        raise
    pending: dict[Any, Job] = {}
    tasks: dict[Callable[..., Any], Any] = {}
    stored: dict[int, Any] = {}  # an argument that several jobs share goes to Ray's store once
    uses = Counter(id(a) for job in jobs for a in job.args)

    def once(arg: Any) -> Any:
        if uses[id(arg)] < 2 or isinstance(arg, str | int | float | bool | type(None)):
            return arg
        if id(arg) not in stored:
            stored[id(arg)] = ray.put(arg)
        return stored[id(arg)]

    try:
        for job in jobs:
            if job.fn not in tasks:
                options = {"num_cpus": num_cpus, "num_gpus": num_gpus, "max_retries": 0}
                tasks[job.fn] = ray.remote(**options)(job.fn)
            pending[tasks[job.fn].remote(*map(once, job.args))] = job
        while pending:
            (ref,), _ = ray.wait(list(pending), num_returns=1)
            job = pending.pop(ref)
            try:
                yield Done(job, ray.get(ref))
            except ray.exceptions.RayTaskError as e:  # the job raised: its own error
                cause = e.cause if isinstance(e.cause, BaseException) else e
                yield Done(job, error=f"{type(cause).__name__}: {cause}")
            except ray.exceptions.RayError as e:  # its worker died, or its node
                yield Done(job, error=f"{type(e).__name__}: {str(e).splitlines()[0]}")
    finally:
        for ref in pending:
            ray.cancel(ref, force=True)
        if started_here:
            ray.shutdown()


def _reachable(address: str, timeout: float = 5.0) -> None:
    """NLDError unless something listens at a HOST:PORT address (a ray:// client address or
    `auto` is left to Ray)."""
    host, sep, port = address.rpartition(":")
    if address.startswith("ray://") or not sep or not port.isdigit():
        return
    try:
        socket.create_connection((host, int(port)), timeout=timeout).close()
    except OSError as e:
        raise NLDError(f"cannot reach the Ray cluster at {address}: {e}") from None


def _fits(total: dict[str, float], num_cpus: float, num_gpus: float) -> None:
    """NLDError if the whole cluster could never give a task what it asks for."""
    for name, wanted in (("CPU", num_cpus), ("GPU", num_gpus)):
        if wanted > total.get(name, 0):
            raise NLDError(
                f"each run asks Ray for {wanted:g} {name}(s), and the Ray cluster has "
                f"{total.get(name, 0):g} in all: ask for less (a sweep's [resources])"
            )
