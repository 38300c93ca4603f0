"""Sharded runs: one run's subjects split over processes, or over a Dask cluster, writing the
same events as one process would.

    from doge_datagen.distributed.sharded import run_sharded

    summary = run_sharded("my_models:build", shards=4)                   # 4 local processes
    summary = run_sharded(build, shards=64, backend="dask", address="tcp://scheduler:8786")

How it works:

- ``build`` (a zero-argument function, or ``"module:function"`` / ``"path/to/file.py:function"``)
  returns a configured :class:`~doge_datagen.DataOnlineGenerator`. The coordinator calls it
  once to read the run's size, seed and start (building a model opens nothing), and every
  worker calls it again to make its own sinks and connections: nothing live is pickled.
- The global subject indices ``0..N-1`` are cut into ``shards`` contiguous ranges
  (:func:`doge_datagen.shards.split`); shard ``k`` runs its range with
  :func:`doge_datagen.engine.run`. The engine's draws and ``datagen.random`` depend only on
  the seed, the subject's global index and the tick, so the shards together write exactly
  the events of a single run (the subjects arriving during the run are dealt out ``j % K``).
- One seed and one resolved ``timestamp_start`` hold for every shard, and a paced run's
  shards share one wall-clock origin (``time.time()`` when the run was asked for), so
  together they keep real time.
- While a shard runs, :func:`doge_datagen.shards.current` names it: a file sink then writes
  its own part, ``STEM-KKKKK-of-NNNNN.SUFFIX``; Kafka and database sinks write to the same
  topic or table from every shard.
- A failing shard stops the others (each finishes its tick and closes its sinks); the run
  then raises :class:`~doge_datagen.errors.ShardError`, which names the shard and carries
  the merged counts. SIGINT or SIGTERM to the coordinator stops every shard gracefully, and
  the merged summary says ``stopped``.
- ``checkpoint=PATH`` makes each shard write its own checkpoint, named as its file parts are
  (``run.ckpt`` -> ``run-00001-of-00004.ckpt``); ``resume=PATH`` makes each shard go on from
  its own, with the same shard count (:mod:`doge_datagen.engine.checkpoint`).

Backends: ``"processes"`` runs one process per shard on this machine: on Linux a copy of the
coordinator (``fork``) when it has a single thread, else the standard library's ``forkserver``
start method where there is one, else ``spawn``; ``"dask"`` submits one task
per shard to a Dask cluster (``pip install 'doge-datagen[dask]'``): a ``LocalCluster`` of
processes without ``address``, the scheduler at ``address`` with one. A Dask worker that dies
mid-run is not replaced by a second attempt of its shard (its sinks already hold part of the
shard's events): the run fails with a :class:`ShardError` that says so.
"""

import bisect
import dataclasses
import logging
import os
import pickle
import re
import signal
import threading
import time
import traceback
import uuid
from contextlib import contextmanager
from dataclasses import dataclass, field
from multiprocessing.connection import wait as wait_for
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List, Optional, Sequence, Tuple, Union

from doge_datagen.core.checks import check_positive_count
from doge_datagen.core.forking import fork_is_safe
from doge_datagen.core.shards import Shard, part_path, running, split
from doge_datagen.distributed import loading, process_server
from doge_datagen.engine import validators
from doge_datagen.engine.summary import RunSummary
from doge_datagen.errors import ConfigurationError, ExchangeError, ShardError
from doge_datagen.model import DataOnlineGenerator

__all__ = [
    "BACKENDS",
    "checkpoint_parts",
    "load_build",
    "run_sharded",
    "start_process_server",
    "stored_run_options",
]

_LOGGER = logging.getLogger(__name__)

Build = Union[Callable[[], DataOnlineGenerator], str]

#: The ways shards can run.
BACKENDS = ("processes", "dask")

# How often a shard looks for a stop request and reports its progress, in seconds.
_POLL_SECONDS = 0.1
_REPORT_SECONDS = 0.5
# How long the coordinator lets a Dask cluster have no worker at all before giving up.
_NO_WORKER_SECONDS = 30.0


# -- what a shard is given and what it gives back ---------------------------------------------


@dataclass(frozen=True)
class _Job:
    """Everything a worker needs to run one shard; picklable."""

    build: Build
    shard: Shard
    subjects_num: int
    ticks_num: Optional[int]
    seed: Any
    timestamp_start: int
    speed: Optional[float]
    wall_start: Optional[float]
    run_id: str
    #: Whether the shard reports metrics snapshots (the coordinator serves them).
    metrics: bool = False
    #: Whether the model swaps messages between shards at each tick (a world's,
    #: :mod:`doge_datagen.populations`), and the first global index of every shard.
    exchange: bool = False
    starts: Tuple[int, ...] = ()
    #: The shard's own checkpoint files (its part of the run's ``checkpoint=`` and
    #: ``resume=`` paths), as :func:`doge_datagen.engine.run` takes them.
    checkpoint: Optional[str] = None
    checkpoint_every: Optional[float] = 10.0
    resume: Optional[str] = None
    force: bool = False


@dataclass
class _Failure:
    """A shard's exception, made to travel: the exception itself when it pickles, and
    always its type, message and traceback text; ``summary`` is what the shard did."""

    kind: str
    message: str
    trace: str
    summary: Optional[RunSummary] = None
    error: Optional[BaseException] = None

    @classmethod
    def of(cls, exc: BaseException) -> "_Failure":
        summary = getattr(exc, "summary", None)
        error: Optional[BaseException] = exc
        try:
            pickle.loads(pickle.dumps(exc))
        except Exception:  # a client library's exception that does not pickle
            error = None
        message = " ".join(str(exc).split()) or type(exc).__name__
        notes = getattr(exc, "__notes__", None)
        if notes:
            message += " (" + "; ".join(str(n) for n in notes) + ")"
        return cls(
            kind=type(exc).__name__,
            message=message,
            trace="".join(traceback.format_exception(type(exc), exc, exc.__traceback__)),
            summary=summary if isinstance(summary, RunSummary) else None,
            error=error,
        )

    def reason(self) -> str:
        return f"{self.kind}: {self.message}"


@dataclass
class _Outcome:
    """How a shard ended: a summary, or a failure."""

    summary: Optional[RunSummary] = None
    failure: Optional[_Failure] = None


# -- building the model -------------------------------------------------------------------------


def load_build(spec: str) -> Callable[[], Any]:
    """The function named by ``"package.module:function"`` or ``"path/to/file.py:function"``
    (:func:`doge_datagen.loading.load_function`)."""
    return loading.load_function(spec)


def _build(build: Build) -> DataOnlineGenerator:
    function = load_build(build) if isinstance(build, str) else build
    datagen = function()
    if not isinstance(datagen, DataOnlineGenerator):
        raise ConfigurationError(
            f"build {build!r} returned {type(datagen).__name__}, not a DataOnlineGenerator"
        )
    return datagen


# -- one shard, in a worker ---------------------------------------------------------------------


class _Control:
    """How a running shard hears a stop request and reports its progress; per backend."""

    def should_stop(self) -> bool:
        return False

    def report(self, ticks: int, events: int) -> None:
        pass

    def report_metrics(self, snapshot: Any) -> None:
        pass

    def exchange(self) -> Any:
        """The shard's side of the message exchange (``swap(tick, outgoing)``)."""
        raise ConfigurationError("this backend does not exchange messages between shards")


# -- messages between shards --------------------------------------------------------------------
# A world's subjects send each other messages, handled at the next tick (populations/world.py).
# At the start of every tick each shard hands over the messages its subjects sent at the tick
# before to subjects of other shards, and gets those sent to its own: ``swap`` returns only
# when every shard has come to that tick, so the one-tick delay is the lookahead that lets the
# shards run a tick at a time side by side. A message is the tuple populations/world.py puts
# on the wire, its receiver's global index at position 3.


def _destination(starts: Sequence[int], total: int, wire: Any) -> int:
    """The shard of a message's receiver: by range for the initial subjects (``total`` of
    them), by arrival number (``j % K``) for those that arrived during the run."""
    g = wire[3]
    if g >= total:
        return int((g - total) % len(starts))
    return bisect.bisect_right(starts, g) - 1


def _by_destination(starts: Sequence[int], total: int, outgoing: List[Any]) -> List[List[Any]]:
    """``outgoing``'s messages in one batch per shard, by their receivers' shards."""
    batches: List[List[Any]] = [[] for _ in starts]
    for wire in outgoing:
        batches[_destination(starts, total, wire)].append(wire)
    return batches


class _PipeExchange:
    """A process shard's side: its messages for each shard, pickled here (in the shard, in
    parallel with the others), to the coordinator's router, and what the others sent it
    back."""

    def __init__(self, connection: Any) -> None:
        self.connection = connection
        self.starts: List[int] = []
        self.total = 0

    def swap(self, tick: int, outgoing: List[Any]) -> List[Any]:
        batches = _by_destination(self.starts, self.total, outgoing)
        blobs = [
            pickle.dumps(batch, pickle.HIGHEST_PROTOCOL) if batch else b"" for batch in batches
        ]
        try:
            self.connection.send((tick, blobs))
            incoming = self.connection.recv()
        except (EOFError, OSError):
            incoming = None
        if incoming is None:
            raise ExchangeError(
                f"at tick {tick} the message exchange between shards ended (another shard "
                "failed or stopped)"
            )
        received: List[Any] = []
        for blob in incoming:
            received.extend(pickle.loads(blob))
        return received


class _Router(threading.Thread):
    """The coordinator's side of the processes backend's exchange: a round per tick, in
    which it takes one list of batches from every shard still running (one pickled batch per
    shard) and hands each shard the batches for it, without unpickling them. A shard that
    ended (its pipe closed) drops out; the messages to it are dropped, which only happens in
    a run that stopped or failed."""

    def __init__(self, connections: List[Any], starts: Sequence[int], total: int) -> None:
        super().__init__(name="doge-message-router", daemon=True)
        self.connections = connections
        self.starts = list(starts)
        self.total = total

    def run(self) -> None:
        alive = list(range(len(self.connections)))
        while alive:
            blobs: Dict[int, List[bytes]] = {}
            for k in list(alive):
                try:
                    _tick, blobs[k] = self.connections[k].recv()
                except (EOFError, OSError):
                    alive.remove(k)
            for k in blobs:
                inbox = [sent[k] for sent in blobs.values() if len(sent) > k and sent[k]]
                try:
                    self.connections[k].send(inbox)
                except (EOFError, OSError):
                    if k in alive:
                        alive.remove(k)


class _QueueExchange:
    """A Dask shard's side: one Dask queue per shard; at each tick a shard puts one batch
    (maybe empty) into every other shard's queue and takes one from each of them (a batch
    of a later tick, from a shard already there, waits for its tick). When the run is asked
    to stop, it stops waiting."""

    def __init__(self, control: "_DaskControl", run_id: str, index: int, count: int) -> None:
        distributed = _dask()
        self.control = control
        self.index = index
        self.queues = [
            distributed.Queue(f"doge-datagen-{run_id}-messages-{k}", client=control.client)
            for k in range(count)
        ]
        self.early: List[Tuple[int, int, List[Any]]] = []
        self.starts: List[int] = []
        self.total = 0

    def swap(self, tick: int, outgoing: List[Any]) -> List[Any]:
        count = len(self.queues)
        batches = _by_destination(self.starts, self.total, outgoing)
        for k in range(count):
            if k != self.index:
                self.queues[k].put((tick, self.index, batches[k]))
        incoming: List[Any] = []
        got = 0
        held, self.early = self.early, []
        for item in held:
            if item[0] == tick:
                incoming.extend(item[2])
                got += 1
            else:
                self.early.append(item)
        while got < count - 1:
            try:
                item = self.queues[self.index].get(timeout=1)
            except Exception:  # a timeout: is the run still going?
                if self.control.should_stop():
                    # The run stops (asked to, or another shard failed): this shard stops at
                    # its next tick too, and the messages still on their way are undelivered.
                    return incoming
                continue
            if item[0] == tick:
                incoming.extend(item[2])
                got += 1
            else:
                self.early.append(item)
        return incoming


def run_shard(job: _Job, control: _Control) -> _Outcome:
    """Build the model and run ``job``'s shard; never raises (a failure is returned)."""
    with running(job.shard):
        datagen: Optional[DataOnlineGenerator] = None
        done = threading.Event()

        def watch() -> None:
            last_report = 0.0
            while not done.wait(_POLL_SECONDS):
                try:
                    if datagen is not None and control.should_stop():
                        datagen.stop()
                    now = time.monotonic()
                    state = getattr(datagen, "_last_run", None)
                    if state is not None and now - last_report >= _REPORT_SECONDS:
                        last_report = now
                        control.report(state.ticks_done, sum(state.counts))
                except Exception:  # the coordinator went away: the run itself goes on
                    _LOGGER.debug("shard watcher", exc_info=True)

        watcher = threading.Thread(target=watch, name=f"doge-shard-{job.shard.index}-watch")
        watcher.daemon = True
        watcher.start()
        try:
            datagen = _build(job.build)
            datagen.subjects_num = job.subjects_num
            datagen.ticks_num = job.ticks_num
            datagen.seed = job.seed
            datagen.validate()
            if control.should_stop():
                datagen.stop()
            reporter = None
            if job.metrics:
                from doge_datagen.metrics.exporter import ShardReporter

                reporter = ShardReporter(control.report_metrics, str(job.shard.index))
            options: Dict[str, Any] = {}
            if job.exchange:
                exchange = control.exchange()
                exchange.starts = list(job.starts)
                exchange.total = job.subjects_num
                options["exchange"] = exchange
            if job.checkpoint is not None or job.resume is not None:
                options.update(
                    checkpoint=job.checkpoint,
                    checkpoint_every=job.checkpoint_every,
                    resume=job.resume,
                    force=job.force,
                )
            summary = datagen.start_range(
                **options,
                metrics=reporter,
                speed=job.speed,
                first=job.shard.start,
                stop=job.shard.stop,
                timestamp_start=job.timestamp_start,
                shard=job.shard.label,
                arrivals_shard=(job.shard.index, job.shard.count),
                wall_start=job.wall_start,
            )
            summary.speed = job.speed
            return _Outcome(summary=summary)
        except BaseException as exc:  # KeyboardInterrupt too: reported, not lost
            return _Outcome(failure=_Failure.of(exc))
        finally:
            done.set()
            watcher.join()


# -- the processes backend ----------------------------------------------------------------------


class _ProcessControl(_Control):
    def __init__(self, stop: Any, connection: Any, messages: Any = None) -> None:
        self.stop = stop
        self.connection = connection
        self.messages = messages
        self.lock = threading.Lock()

    def exchange(self) -> Any:
        return _PipeExchange(self.messages)

    def should_stop(self) -> bool:
        return bool(self.stop.is_set())

    def report(self, ticks: int, events: int) -> None:
        self.send(("progress", ticks, events))

    def report_metrics(self, snapshot: Any) -> None:
        self.send(("metrics", snapshot))

    def send(self, message: Any) -> None:
        with self.lock:
            self.connection.send(message)


def _process_main(
    job: _Job, stop: Any, connection: Any, environ: Dict[str, str], messages: Any = None
) -> None:
    """A shard's process: SIGINT is the coordinator's to handle (a terminal sends it to the
    whole process group); SIGTERM sent to this process alone stops its shard gracefully.

    ``environ`` is the coordinator's environment as the run starts. A process forked from the
    workers' server would otherwise have the server's, from the first run of the coordinator
    (a model reading ``os.environ`` in its build would then write where an earlier run did);
    with it, a shard sees what a spawned process, or the model run without workers, would.
    """
    if os.environ != environ:
        os.environ.clear()
        os.environ.update(environ)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    control = _ProcessControl(stop, connection, messages)
    signal.signal(signal.SIGTERM, lambda signum, frame: stop.set())
    outcome = run_shard(job, control)
    try:
        control.send(("done", outcome))
    except Exception as exc:  # the outcome does not pickle: send what surely does
        failure = _Failure.of(exc)
        failure.error = None
        control.send(("done", _Outcome(failure=failure)))
    finally:
        connection.close()
        if messages is not None:
            messages.close()


def start_process_server(build: Build) -> None:
    """Start, in the background, the server that forks the ``"processes"`` backend's shards
    when the coordinator cannot be copied (it has a second thread: a client library's, a
    metrics server's), having imported doge-datagen and loaded ``build``'s module or file;
    return at once.

    That server is a new interpreter: it takes about 0.1 s to be ready, which a run of a
    second or two would otherwise wait for before its first shard starts. Called early by a
    program that knows it will have threads, it gets ready while the program goes on
    (:mod:`doge_datagen.process_server`). Optional: :func:`run_sharded` starts the server when
    it needs one and it is not running, and later runs in this process reuse it. A
    coordinator with a single thread does not use it: its shards are copies of itself.
    """
    process_server.start(_models_of(build))


def _models_of(build: Build) -> List[str]:
    """What the workers' server should load for ``build``: the module or the file (as an
    absolute path: the loader's name for it) that defines it, if there is one (not
    ``__main__``, which each shard's process loads as the standard library does)."""
    if isinstance(build, str):
        return [loading.module_of(build)]
    function = getattr(build, "func", build)  # functools.partial
    name = getattr(function, "__module__", None)
    return [name] if isinstance(name, str) and name != "__main__" else []


def _fork_context() -> Any:
    """The ``fork`` context when this process can be forked safely as it is, else ``None``.

    The coordinator has built its copy of the model by now, so it has imported everything a
    shard needs: a copy of it made by ``fork`` runs its shard at once, where the workers'
    server would first have to be ready (0.03-0.1 s after the coordinator, on two cores: a
    tenth of a run of a second or two, and the slower of two shards waits for it). A process
    with a second thread (a client library's, a metrics server's, another test's) is not
    forked: the copy would get the thread's locks without the thread. Nor on anything but
    Linux, where ``fork`` of a process that has used system frameworks is not safe.
    """
    import multiprocessing

    if not fork_is_safe() or "fork" not in multiprocessing.get_all_start_methods():
        return None
    return multiprocessing.get_context("fork")


class _ProcessBackend:
    """One process per shard on this machine."""

    def __init__(self, jobs: List[_Job]) -> None:
        # A copy of this process where that is safe; else forked from a server that has
        # imported doge-datagen and loaded the model once (started here unless it runs).
        context = _fork_context()
        if context is None:
            # The build's module, and the models this process loaded by name (those of the
            # command line's `run MODEL`, say), once in the server rather than in each shard.
            models = dict.fromkeys([*_models_of(jobs[0].build), *loading.loaded()])
            process_server.start(list(models))
            context = process_server.context()
        self.stop_event = context.Event()
        self.processes: List[Any] = []
        self.connections: List[Any] = []
        routes: List[Any] = []
        for job in jobs:
            receiver, sender = context.Pipe(duplex=False)
            ours, theirs = context.Pipe() if job.exchange else (None, None)
            process = context.Process(
                target=_process_main,
                args=(job, self.stop_event, sender, dict(os.environ), theirs),
                name=f"doge-shard-{job.shard.index}",
            )
            process.start()
            sender.close()
            if theirs is not None:
                theirs.close()
                routes.append(ours)
            self.processes.append(process)
            self.connections.append(receiver)
        self.router: Optional[_Router] = None
        if routes:  # started after the shards: a process is not forked with its thread
            self.router = _Router(routes, jobs[0].starts, jobs[0].subjects_num)
            self.router.start()

    def request_stop(self, again: bool) -> None:
        self.stop_event.set()
        if again:  # a second signal: shards that run without a tick limit hurry their sinks
            for process in self.processes:
                if process.is_alive() and process.pid is not None:
                    try:
                        os.kill(process.pid, signal.SIGTERM)
                    except OSError:
                        pass

    def poll(self, tracker: "_Tracker", timeout: float) -> None:
        waiting = {}
        for k in tracker.running():
            waiting[self.connections[k]] = k
            waiting[self.processes[k].sentinel] = k
        if not waiting:
            return
        for ready in wait_for(list(waiting), timeout):
            k = waiting[ready]
            if k not in tracker.running():
                continue
            connection = self.connections[k]
            try:
                while connection.poll():
                    message = connection.recv()
                    if message[0] == "progress":
                        tracker.progress(k, message[1], message[2])
                    elif message[0] == "metrics":
                        tracker.metrics_snapshot(message[1])
                    else:
                        tracker.finish(k, message[1])
                        break
            except (EOFError, OSError):
                pass
            process = self.processes[k]
            if k in tracker.running() and not process.is_alive():
                process.join()
                code = process.exitcode
                how = f"signal {-code}" if code is not None and code < 0 else f"status {code}"
                tracker.lost(k, f"its process ended with {how} before the shard finished")

    def close(self) -> None:
        for process in self.processes:
            process.join(timeout=5)
            if process.is_alive():  # pragma: no cover - a shard that ignores the stop
                process.terminate()
                process.join()
        for connection in self.connections:
            connection.close()
        if self.router is not None:
            for route in self.router.connections:
                route.close()
            self.router.join(timeout=5)


# -- the Dask backend ---------------------------------------------------------------------------


def _dask() -> Any:
    try:
        import distributed
    except ImportError as exc:
        raise ImportError(
            "backend='dask' needs the Python package 'distributed', which is not installed: "
            "pip install 'doge-datagen[dask]'"
        ) from exc
    return distributed


class _DaskControl(_Control):
    def __init__(self, run_id: str, index: int, count: int = 1) -> None:
        distributed = _dask()
        self.client = distributed.get_client()
        self.event = distributed.Event(f"doge-datagen-stop-{run_id}", client=self.client)
        self.key = ["doge-datagen", run_id, "progress", str(index)]
        self.run_id, self.index, self.count = run_id, index, count

    def exchange(self) -> Any:
        return _QueueExchange(self, self.run_id, self.index, self.count)

    def should_stop(self) -> bool:
        return bool(self.event.is_set())

    def report(self, ticks: int, events: int) -> None:
        self.client.set_metadata(self.key, (ticks, events))

    def report_metrics(self, snapshot: Any) -> None:
        self.client.set_metadata(self.key[:-2] + ["metrics", self.key[-1]], snapshot.to_dict())


def _dask_shard(job: _Job) -> _Outcome:
    """A shard as a Dask task. A second attempt of a shard (its first worker died) does not
    run: what the first one wrote is already in the sinks."""
    distributed = _dask()
    client = distributed.get_client()
    started = ["doge-datagen", job.run_id, "started", str(job.shard.index)]
    where = client.get_metadata(started, default=None)
    if where is not None:
        return _Outcome(
            failure=_Failure(
                kind="WorkerLost",
                message=f"the Dask worker running it ({where}) died mid-run; the shard was "
                "not run again, since its sinks already hold part of its events",
                trace="",
            )
        )
    worker = distributed.get_worker()
    client.set_metadata(started, worker.address)
    return run_shard(job, _DaskControl(job.run_id, job.shard.index, job.shard.count))


@contextmanager
def _signals_ignored_by_new_processes() -> Iterator[None]:
    """While a LocalCluster starts its worker processes: SIGINT and SIGTERM ignored, which
    the processes it starts keep (an ignored signal stays ignored across ``exec``).

    Those processes are in the command's process group, so a terminal's Ctrl-C or a
    ``kill -TERM -PGID`` reaches them as well as the coordinator. Dask's workers would shut
    down on it, under the shards the coordinator is stopping gracefully, and the run would
    end with its workers lost. The cluster is the coordinator's: it closes it once every
    shard has stopped. A signal that comes while the cluster starts (a second or so) is
    ignored, since recording it would need a handler, and handlers do not survive ``exec``.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {sig: signal.signal(sig, signal.SIG_IGN) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


class _DaskBackend:
    """One task per shard on a Dask cluster: a LocalCluster of processes, or ``address``."""

    def __init__(self, jobs: List[_Job], address: Optional[str]) -> None:
        distributed = _dask()
        self.distributed = distributed
        self.cluster = None
        if address is None:
            workers = max(1, min(len(jobs), os.cpu_count() or 1))
            # Shards that swap messages at every tick all run at once: threads for each.
            threads = -(-len(jobs) // workers) if jobs[0].exchange else 1
            with _signals_ignored_by_new_processes():
                self.cluster = distributed.LocalCluster(
                    n_workers=workers,
                    threads_per_worker=threads,
                    processes=True,
                    dashboard_address=":0",
                )
            self.client = distributed.Client(self.cluster)
        else:
            try:
                self.client = distributed.Client(address, timeout=30)
            except (OSError, TimeoutError) as exc:
                raise ConfigurationError(
                    f"cannot reach the Dask scheduler at {address!r}: {exc}"
                ) from exc
        if jobs[0].exchange:
            self._check_room(len(jobs))
        self.run_id = jobs[0].run_id
        self.stop_event = distributed.Event(f"doge-datagen-stop-{self.run_id}", client=self.client)
        self.futures = [
            self.client.submit(
                _dask_shard,
                job,
                key=f"doge-datagen-shard-{job.shard.index}-{self.run_id}",
                pure=False,
                retries=0,
            )
            for job in jobs
        ]
        self.no_worker_since: Optional[float] = None

    def _check_room(self, count: int) -> None:
        """Shards that swap messages at every tick wait for each other: they must all run
        at once, so the cluster needs a thread for each."""
        workers = self.client.scheduler_info().get("workers", {})
        threads = sum(int(w.get("nthreads", 1)) for w in workers.values())
        if threads < count:
            self.client.close()
            if self.cluster is not None:
                self.cluster.close()
            raise ConfigurationError(
                f"the model's {count} shards exchange messages at every tick, so they run all "
                f"at once, and the Dask cluster has {threads} worker threads: give it at least "
                f"{count} (dask worker --nthreads), or run fewer shards"
            )

    def request_stop(self, again: bool) -> None:
        self.stop_event.set()

    def poll(self, tracker: "_Tracker", timeout: float) -> None:
        running = tracker.running()
        if not running:
            return
        try:
            self.distributed.wait(
                [self.futures[k] for k in running], timeout=timeout, return_when="FIRST_COMPLETED"
            )
        except (TimeoutError, self.distributed.TimeoutError):
            pass
        for k in running:
            future = self.futures[k]
            if tracker.metrics is not None:
                self._metrics(tracker, k)  # the last one a finished shard sent, too
            if future.status == "finished":
                tracker.finish(k, future.result())
            elif future.status in ("error", "cancelled", "lost"):
                try:
                    error = future.exception()
                except BaseException as exc:  # cancelled
                    error = exc
                tracker.lost(k, f"its Dask task ended with {type(error).__name__}: {error}")
        # Every shard's progress in one request (not one per shard: a run may have hundreds).
        reported = self.client.get_metadata(["doge-datagen", self.run_id, "progress"], default={})
        for k in tracker.running():
            if str(k) in reported:
                tracker.progress(k, reported[str(k)][0], reported[str(k)][1])
        self._check_workers(tracker)

    def _metrics(self, tracker: "_Tracker", k: int) -> None:
        from doge_datagen.metrics.exporter import Snapshot

        data = self.client.get_metadata(
            ["doge-datagen", self.run_id, "metrics", str(k)], default=None
        )
        if data is not None:
            tracker.metrics_snapshot(Snapshot.from_dict(data))

    def _check_workers(self, tracker: "_Tracker") -> None:
        """Shards waiting for a worker that will never come fail instead of hanging."""
        workers = self.client.scheduler_info().get("workers", {})
        if workers:
            self.no_worker_since = None
            return
        now = time.monotonic()
        if self.no_worker_since is None:
            self.no_worker_since = now
        elif now - self.no_worker_since > _NO_WORKER_SECONDS:
            for k in tracker.running():
                tracker.lost(k, f"the Dask cluster had no worker for {_NO_WORKER_SECONDS:.0f} s")

    def close(self) -> None:
        try:
            self.client.cancel(self.futures)
            try:  # leave nothing of this run in the scheduler's memory
                self.stop_event.clear()
                self.client.set_metadata(["doge-datagen", self.run_id], None)
            except Exception:  # pragma: no cover - the scheduler may be gone
                pass
            self.client.close()
        finally:
            if self.cluster is not None:
                self.cluster.close()


# -- the coordinator ----------------------------------------------------------------------------


@dataclass
class _Tracker:
    """What the coordinator knows of each shard."""

    jobs: List[_Job]
    outcomes: Dict[int, _Outcome] = field(default_factory=dict)
    reported: Dict[int, Tuple[int, int]] = field(default_factory=dict)
    #: The metrics server that shows the shards' snapshots, if any.
    metrics: Any = None

    def metrics_snapshot(self, snapshot: Any) -> None:
        if self.metrics is not None:
            self.metrics.update(snapshot)

    def running(self) -> List[int]:
        return [k for k in range(len(self.jobs)) if k not in self.outcomes]

    def progress(self, k: int, ticks: int, events: int) -> None:
        self.reported[k] = (ticks, events)

    def finish(self, k: int, outcome: _Outcome) -> None:
        self.outcomes[k] = outcome

    def lost(self, k: int, why: str) -> None:
        """A shard that cannot report: counted with what it last reported."""
        ticks, events = self.reported.get(k, (0, 0))
        job = self.jobs[k]
        partial = RunSummary(
            seed=job.seed,
            subjects=job.shard.stop - job.shard.start,
            ticks=ticks,
            events=events,
            timestamp_start=job.timestamp_start,
            stopped=True,
        )
        self.outcomes[k] = _Outcome(
            failure=_Failure(kind="ShardLost", message=why, trace="", summary=partial)
        )

    def failed(self) -> List[int]:
        return sorted(k for k, o in self.outcomes.items() if o.failure is not None)

    def summaries(self) -> List[RunSummary]:
        parts = []
        for k, job in enumerate(self.jobs):
            outcome = self.outcomes.get(k)
            summary = None
            if outcome is not None:
                summary = outcome.summary
                if summary is None and outcome.failure is not None:
                    summary = outcome.failure.summary
            if summary is None:
                summary = RunSummary(
                    seed=job.seed, subjects=job.shard.stop - job.shard.start, ticks=0
                )
            parts.append(summary)
        return parts


class _Signals:
    """SIGINT and SIGTERM, while a sharded run goes on in the main thread, ask every shard to
    stop; a second one also asks them to hurry their sinks."""

    def __init__(self) -> None:
        self.received: List[int] = []
        self.previous: Dict[int, Any] = {}

    def __enter__(self) -> "_Signals":
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self.previous[sig] = signal.signal(sig, self._handle)
        return self

    def _handle(self, signum: int, frame: Any) -> None:
        self.received.append(signum)
        _LOGGER.info("signal %s received: stopping every shard", signum)

    def __exit__(self, *exc_info: Any) -> None:
        for sig, old in self.previous.items():
            signal.signal(sig, old)


class _Progress:
    """The progress of every shard as one line on standard error."""

    def __init__(self, ticks_num: Optional[int], count: int) -> None:
        from doge_datagen.engine.progress import ProgressReporter

        self.count = count
        self.reporter = ProgressReporter(ticks_num, [], [])

    def update(self, tracker: _Tracker, timestamp_start: int, tick_ms: float) -> None:
        reported = [tracker.reported.get(k, (0, 0)) for k in range(self.count)]
        for k, outcome in tracker.outcomes.items():
            if outcome.summary is not None:
                reported[k] = (outcome.summary.ticks or 0, outcome.summary.events)
        ticks = min(r[0] for r in reported)
        events = sum(r[1] for r in reported)
        self.reporter.update(ticks, timestamp_start + round(ticks * tick_ms), events)

    def close(self) -> None:
        self.reporter.close()


def run_sharded(
    build: Build,
    *,
    shards: int,
    backend: str = "processes",
    address: Optional[str] = None,
    subjects_num: Optional[int] = None,
    ticks_num: Optional[int] = None,
    seed: Any = None,
    speed: Optional[float] = None,
    progress: bool = False,
    metrics_port: Union[int, str, None] = None,
    metrics: Any = None,
    checkpoint: Any = None,
    checkpoint_every: Optional[float] = 10.0,
    resume: Any = None,
    force: bool = False,
) -> RunSummary:
    """Run the model that ``build()`` returns as ``shards`` shards of contiguous subject
    ranges, with ``backend`` (``"processes"`` or ``"dask"``); return the merged summary.

    ``subjects_num``, ``ticks_num`` and ``seed`` override the built model's; ``speed`` paces
    the run as in :meth:`~doge_datagen.DataOnlineGenerator.start`; ``address`` is the Dask
    scheduler's (``backend="dask"`` only; without it a ``LocalCluster`` is started).
    ``metrics_port`` or ``metrics`` serve the run's metrics here, in this process, as
    :meth:`~doge_datagen.DataOnlineGenerator.start` does; each shard sends its numbers back
    and its series carry a ``shard`` label.
    ``summary.shards`` holds each shard's own summary. Raises
    :class:`~doge_datagen.errors.ShardError` if a shard fails (the others are stopped first).

    ``checkpoint`` (a path) makes every shard write its own checkpoint, every
    ``checkpoint_every`` seconds and when it ends or stops, to the file named as its parts
    are (:func:`~doge_datagen.shards.part_path`: ``run.ckpt`` -> ``run-00001-of-00004.ckpt``).
    ``resume`` (the same path) makes every shard go on from its own file, and cuts its file
    parts back to where they were: the run must have the shard count that wrote them, and
    each shard's model the fingerprint of its checkpoint (unless ``force``), as in
    :meth:`~doge_datagen.DataOnlineGenerator.start`. A missing shard's file, or files of
    another shard count, are a :class:`ConfigurationError` before any shard starts.
    """
    count, speed = _check_sharding(build, shards, backend, address, speed)
    # The coordinator's own copy of the model: its size, seed and start, resolved once.
    model = _build(build)
    if subjects_num is not None:
        model.subjects_num = validators.check_count("subjects_num", subjects_num)
    if ticks_num is not None:
        model.ticks_num = validators.check_count("ticks_num", ticks_num)
    if seed is not None:
        model.seed = seed
    model.validate()
    resumed = _checkpoint_files(model, count, checkpoint, checkpoint_every, resume, force)
    timestamp_start = model.timestamp_start
    if timestamp_start is None and resumed:
        from doge_datagen.engine.checkpoint import run_options

        timestamp_start = run_options(resumed[0])["timestamp_start"]
    if timestamp_start is None:
        timestamp_start = round(time.time() * 1000)
    began = time.perf_counter()
    wall_start = time.time() if speed is not None else None
    with_metrics = metrics is not None or metrics_port is not None
    jobs = _jobs(build, model, count, timestamp_start, speed, wall_start, with_metrics)
    if checkpoint is not None or resume is not None:
        jobs = [
            dataclasses.replace(
                job,
                checkpoint=None if checkpoint is None else str(part_path(checkpoint, job.shard)),
                checkpoint_every=checkpoint_every,
                resume=resumed[job.shard.index] if resumed else None,
                force=force,
            )
            for job in jobs
        ]
    server, owned = _open_server(metrics, metrics_port) if with_metrics else (None, False)
    try:
        tracker = _Tracker(jobs, metrics=server)
        display = _Progress(model.ticks_num, count) if progress else None
        with _Signals() as signals:
            runner: Any = (
                _DaskBackend(jobs, address) if backend == "dask" else _ProcessBackend(jobs)
            )
            _watch(runner, tracker, signals, display, timestamp_start, model.tick_ms)
        summary = RunSummary.merge(tracker.summaries(), time.perf_counter() - began)
        summary.signals = list(signals.received)
        if signals.received:
            summary.stopped = True
        summary.ticks = summary.ticks if summary.ticks is not None else model.ticks_num
        failed = tracker.failed()
        if failed:
            raise _shard_error(tracker, failed, summary)
        return summary
    finally:
        if owned and server is not None:
            server.close()


def _check_sharding(
    build: Build, shards: int, backend: str, address: Optional[str], speed: Optional[float]
) -> Tuple[int, Optional[float]]:
    """The arguments of :func:`run_sharded` that need no model, checked: ``(shard count,
    speed)``."""
    count = check_positive_count("shards", shards)
    if backend not in BACKENDS:
        raise ConfigurationError(f"backend must be one of {', '.join(BACKENDS)}, got {backend!r}")
    if address is not None and backend != "dask":
        raise ConfigurationError("address is for backend='dask' only")
    if not (isinstance(build, str) or callable(build)):
        raise ConfigurationError(
            f"build must be a function or a 'module:function' string, got {build!r}"
        )
    if speed is not None:
        speed = validators.check_positive("speed", speed)
    if backend == "dask":
        _dask()  # a clear ImportError before anything else happens
    elif not isinstance(build, str):
        try:
            pickle.dumps(build)
        except Exception as exc:
            raise ConfigurationError(
                f"build {build!r} cannot be sent to another process ({exc}): give a function "
                "defined at the top level of a module, or a 'module:function' string"
            ) from exc
    return count, speed


# -- checkpoints of a sharded run ----------------------------------------------------------------


def checkpoint_parts(path: Any) -> Dict[int, Dict[int, Path]]:
    """The shards' files of the sharded checkpoint ``path`` that exist, by shard count, then
    by shard index: ``{2: {0: .../run-00000-of-00002.ckpt, 1: ...}}`` for ``run.ckpt``."""
    original = Path(path)
    suffix = original.suffix
    stem = original.name[: -len(suffix)] if suffix else original.name
    pattern = re.compile(re.escape(stem) + r"-(\d{5,})-of-(\d{5,})" + re.escape(suffix))
    found: Dict[int, Dict[int, Path]] = {}
    try:
        names = os.listdir(original.parent)
    except OSError:
        return found
    for name in names:
        match = pattern.fullmatch(name)
        if match is not None and int(match[1]) < int(match[2]):
            found.setdefault(int(match[2]), {})[int(match[1])] = original.with_name(name)
    return found


def stored_run_options(path: Any) -> Dict[str, Any]:
    """The seed and the resolved ``timestamp_start`` of the sharded run whose checkpoint is
    ``path`` (:func:`doge_datagen.engine.checkpoint.run_options`, read from a shard's file;
    every shard of a run has the same), or of a run in one process that wrote ``path``."""
    from doge_datagen.engine.checkpoint import run_options

    for _count, files in sorted(checkpoint_parts(path).items()):
        return run_options(files[min(files)])
    return run_options(path)


def _checkpoint_files(
    model: DataOnlineGenerator,
    count: int,
    checkpoint: Any,
    every: Optional[float],
    resume: Any,
    force: bool,
) -> List[str]:
    """The checkpoint options of :func:`run_sharded`, checked; the file of each of the
    ``count`` shards to resume from (none without ``resume``)."""
    if checkpoint is None and resume is None:
        if force:
            raise ConfigurationError("force applies to resume: give resume=PATH")
        return []
    if getattr(model, "exchanges_messages", False):
        raise ConfigurationError(
            "checkpoints of a world are not supported yet: its shards exchange messages at "
            "every tick"
        )
    if every is not None and not (isinstance(every, (int, float)) and every > 0):
        raise ConfigurationError(f"checkpoint_every must be a positive number, got {every!r}")
    if checkpoint is not None and not Path(checkpoint).parent.is_dir():
        raise ConfigurationError(
            f"cannot write checkpoint {str(checkpoint)!r}: no directory "
            f"{str(Path(checkpoint).parent)!r}"
        )
    if resume is None:
        if force:
            raise ConfigurationError("force applies to resume: give resume=PATH")
        return []
    shards = split(model.subjects_num, count)
    found = checkpoint_parts(resume)
    if count not in found:
        if found:
            others = " and ".join(
                f"{n} shards ({', '.join(repr(p.name) for _, p in sorted(files.items())[:3])}"
                f"{', ...' if len(files) > 3 else ''})"
                for n, files in sorted(found.items())
            )
            hint = ""
            if len(found) == 1:
                (written,) = found
                hint = f" (shards={written}, --workers {written})"
            raise ConfigurationError(
                f"checkpoint {str(resume)!r} was written by a run of {others}; this run has "
                f"{count} shards: resume with the shard count that wrote it{hint}"
            )
        if Path(resume).is_file():
            raise ConfigurationError(
                f"checkpoint {str(resume)!r} was written by a run in one process: resume it "
                "without shards (a sharded run resumes from one file per shard, "
                f"{part_path(resume, shards[0]).name!r} and on)"
            )
        raise ConfigurationError(
            f"no checkpoint of a sharded run at {str(resume)!r}: there is no "
            f"{str(part_path(resume, shards[0]))!r} nor any other shard's file"
        )
    files = found[count]
    missing = [shard for shard in shards if shard.index not in files]
    if missing:
        names = ", ".join(
            f"shard {shard.index} ({part_path(resume, shard).name!r})" for shard in missing[:5]
        )
        more = f" and {len(missing) - 5} more" if len(missing) > 5 else ""
        raise ConfigurationError(
            f"checkpoint {str(resume)!r} of {count} shards lacks the file of {names}{more}: "
            "every shard resumes from its own"
        )
    return [str(files[shard.index]) for shard in shards]


def _jobs(
    build: Build,
    model: DataOnlineGenerator,
    count: int,
    timestamp_start: int,
    speed: Optional[float],
    wall_start: Optional[float],
    with_metrics: bool,
) -> List[_Job]:
    """One job per shard of the coordinator's ``model``, all of one run."""
    run_id = uuid.uuid4().hex[:12]
    shards = split(model.subjects_num, count)
    exchange = count > 1 and bool(getattr(model, "exchanges_messages", False))
    return [
        _Job(
            build=build,
            shard=shard,
            subjects_num=model.subjects_num,
            ticks_num=model.ticks_num,
            seed=model.seed,
            timestamp_start=timestamp_start,
            speed=speed,
            wall_start=wall_start,
            run_id=run_id,
            metrics=with_metrics,
            exchange=exchange,
            starts=tuple(part.start for part in shards),
        )
        for shard in shards
    ]


def _open_server(metrics: Any, metrics_port: Union[int, str, None]) -> Tuple[Any, bool]:
    """The metrics server of the run, emptied: ``(server, whether the run owns it)``."""
    from doge_datagen.metrics.exporter import open_metrics

    # Bound before any shard starts: a port in use stops nothing half-made.
    server, owned = open_metrics(metrics, metrics_port)
    assert server is not None
    server.reset()
    return server, owned


def _watch(
    runner: Any,
    tracker: _Tracker,
    signals: _Signals,
    display: Optional[_Progress],
    timestamp_start: int,
    tick_ms: float,
) -> None:
    """Poll the shards until none is running. A signal asks them all to stop (a second one
    to hurry), so does the first failure; the runner is closed however this ends."""
    try:
        asked = 0
        while tracker.running():
            runner.poll(tracker, _POLL_SECONDS * 2)
            if len(signals.received) > asked:
                runner.request_stop(again=asked > 0)
                asked = len(signals.received)
            elif tracker.failed() and asked == 0:
                runner.request_stop(again=False)
                asked = -1  # stopping for a failure; a signal still counts as the first
            if display is not None:
                display.update(tracker, timestamp_start, tick_ms)
    except BaseException:
        runner.request_stop(again=False)
        raise
    finally:
        runner.close()
        if display is not None:
            display.update(tracker, timestamp_start, tick_ms)
            display.close()


def _shard_error(tracker: _Tracker, failed: List[int], summary: RunSummary) -> ShardError:
    first = failed[0]
    failure = tracker.outcomes[first].failure
    assert failure is not None
    shard = tracker.jobs[first].shard
    others = f"; {len(failed) - 1} more shards failed" if len(failed) > 1 else ""
    message = (
        f"{shard} failed: {failure.reason()}{others}. The other shards were stopped and every "
        f"sink closed; together the shards wrote {summary.events} events"
    )
    error = ShardError(
        message,
        shard=first,
        failures={k: tracker.outcomes[k].failure.reason() for k in failed},  # type: ignore[union-attr]
        summary=summary,
    )
    if failure.trace and hasattr(error, "add_note"):
        error.add_note(f"traceback of {shard}:\n{failure.trace.rstrip()}")
    if failure.error is not None:
        error.__cause__ = failure.error
    return error
