"""Watching a run from outside: Prometheus metrics, a live status page and a health check.

``start(metrics_port=9100)`` (or ``doge-datagen ... --metrics-port 9100``) serves, while the
run goes on, on loopback unless an address is given:

- ``/metrics``: the Prometheus text format (needs the ``[metrics]`` extra, which brings
  ``prometheus-client``);
- ``/``: one small HTML page that reloads itself: events per second per trigger over the last
  minutes as an inline SVG chart, the subjects in each state, each sink's counts, the pacing
  lag, the seed and the model's name;
- ``/healthz``: ``200`` while the run is healthy, ``503`` once a sink has failed or the run
  failed, or while the pacer is more than ``max_lag_ticks`` ticks behind its schedule.

How it stays cheap: the engine's hot loop does nothing for the metrics. A sampler thread
reads, once a second, what the run keeps anyway (its per-transition event and veto counts,
the sinks' ``delivered``/``failed``, the pacer's lag buckets) into a :class:`Snapshot`; the
number of subjects in each state is derived from the per-transition counts (a subject is in
state ``s`` when it has entered ``s`` once more than it has left it), so nothing scans the
subjects and nothing is counted twice. Scrapes and page loads only render the last snapshot.

A :class:`Snapshot` is plain, picklable data, so the shards of a sharded run can send theirs
to the one server that the user scrapes; each shard's series then carry a ``shard`` label.

``prometheus_client`` is imported only when a :class:`MetricsServer` is made, never at
``import doge_datagen``.
"""

import errno
import json
import logging
import math
import socket
import threading
import time
from collections import deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Deque, Dict, Iterator, List, Optional, Sequence, Tuple, Union

from doge_datagen.core.checks import check_positive
from doge_datagen.core.masking import mask_secrets
from doge_datagen.engine.pacing import LAG_BUCKETS
from doge_datagen.errors import ConfigurationError
from doge_datagen.metrics.snapshot import SinkCounts, Snapshot
from doge_datagen.sinks.base import delivery_counts, optional_import

__all__ = [
    "LAG_BUCKETS",
    "MetricsServer",
    "RunProbe",
    "ShardReporter",
    "SinkCounts",
    "Snapshot",
    "mask_secrets",
    "open_metrics",
    "parse_address",
]

_LOGGER = logging.getLogger(__name__)

#: The default of ``max_lag_ticks``: how many ticks the pacer may be behind before /healthz
#: reports the run unhealthy.
DEFAULT_MAX_LAG_TICKS = 10.0

_DEFAULT_HOST = "127.0.0.1"


def parse_address(address: Union[int, str, Tuple[str, int]]) -> Tuple[str, int]:
    """``9100`` -> ``("127.0.0.1", 9100)``; ``"0.0.0.0:9100"``, ``"[::1]:9100"``; ``":9100"``
    means every interface (as Prometheus exporters read it). Port 0 picks a free port."""
    port: Any
    if isinstance(address, tuple) and len(address) == 2:
        host, port = address
        text = f"{host}:{port}"
    elif isinstance(address, bool):
        raise ConfigurationError(f"metrics port must be a port number, got {address!r}")
    elif isinstance(address, int):
        host, port, text = _DEFAULT_HOST, address, str(address)
    elif isinstance(address, str):
        text = address.strip()
        if text.isdigit():
            host, port = _DEFAULT_HOST, text
        else:
            host, sep, port = text.rpartition(":")
            if not sep:
                raise ConfigurationError(
                    f"metrics address {address!r}: expected PORT or HOST:PORT, e.g. 127.0.0.1:9100"
                )
            if host.startswith("[") and host.endswith("]"):
                host = host[1:-1]
            elif ":" in host:
                raise ConfigurationError(
                    f"metrics address {address!r}: write an IPv6 host in brackets, e.g. [::1]:9100"
                )
            host = host or "0.0.0.0"
    else:
        raise ConfigurationError(
            f"metrics port must be a port number or 'HOST:PORT', got {address!r}"
        )
    try:
        number = int(port)
    except (TypeError, ValueError):
        raise ConfigurationError(
            f"metrics address {text!r}: port {port!r} is not a number"
        ) from None
    if isinstance(port, bool) or not 0 <= number <= 65535:
        raise ConfigurationError(f"metrics address {text!r}: port {port!r} is not 0 to 65535")
    return str(host), number


# -- what a run looks like from outside ----------------------------------------------------


class RunProbe:
    """Reads a running engine into :class:`Snapshot` objects, from another thread.

    ``run`` is the engine's :class:`~doge_datagen.engine.Run`: its ``model``,
    ``first``/``stop`` (its subject indices), ``counts``/``vetoes`` (per transition),
    ``state_counts()``, ``ticks_done``, ``timestamp`` and ``pacer``. Only list copies
    (atomic under the GIL) and attribute reads happen here, so the run itself is never
    locked or slowed.
    """

    def __init__(
        self,
        run: Any,
        sinks: Sequence[Any],
        labels: Sequence[str],
        *,
        shard: Optional[str] = None,
        speed: Optional[float] = None,
        name: Optional[str] = None,
    ) -> None:
        model = run.model
        self.run = run
        self.shard = shard
        self.speed = speed
        self.name = mask_secrets(name or _model_name(model))
        self.seed = mask_secrets(repr(model.seed))
        self.states: List[str] = list(model.states)
        self.triggers: List[str] = [t.trigger for t in model.transitions]
        position = {id(sink): n for n, sink in enumerate(sinks)}
        # For each sink, the transitions whose events it receives.
        self.sink_transitions: List[List[int]] = [[] for _ in sinks]
        for k, transition in enumerate(model.transitions):
            for sink in dict.fromkeys(transition.event_sinks, None):
                n = position.get(id(sink))
                if n is not None:
                    self.sink_transitions[n].append(k)
        self.sinks = list(sinks)
        self.labels = [mask_secrets(label) for label in labels]
        self.ticks_total: Optional[int] = model.ticks_num
        self.error: Optional[str] = None
        self.running = True

    def snapshot(self) -> Snapshot:
        run = self.run
        counts = run.counts[:]  # a copy in one step: the engine goes on meanwhile
        vetoes = run.vetoes[:]
        arrived = int(getattr(run, "arrived", 0))  # after the counts: see Run.state_counts
        events: Dict[str, int] = {}
        vetoed: Dict[str, int] = {}
        for trigger, n, v in zip(self.triggers, counts, vetoes):
            events[trigger] = events.get(trigger, 0) + n
            vetoed[trigger] = vetoed.get(trigger, 0) + v
        sinks = []
        for sink, label, ks in zip(self.sinks, self.labels, self.sink_transitions):
            delivery = delivery_counts(sink)
            sinks.append(
                SinkCounts(
                    label,
                    sum(counts[k] for k in ks),
                    None if delivery is None else delivery[0],
                    None if delivery is None else delivery[1],
                )
            )
        pacer = run.pacer
        lag_buckets = None
        lag_sum, lag_count, behind = 0.0, 0, 0.0
        if pacer is not None:
            cumulative, running = [], 0
            for n in pacer.lag_buckets[:]:
                running += n
                cumulative.append(running)
            lag_buckets = cumulative
            lag_sum, lag_count = pacer.lag_sum, pacer.lag_count
            behind = pacer.behind_ticks() if self.running else 0.0
        return Snapshot(
            model=self.name,
            seed=self.seed,
            subjects=int(run.stop - run.first) + arrived,
            ticks_total=self.ticks_total,
            ticks_done=int(run.ticks_done),
            simulated_time_ms=float(run.timestamp),
            events=events,
            vetoes=vetoed,
            states=dict(zip(self.states, run.state_counts(counts, arrived))),
            sinks=sinks,
            shard=self.shard,
            speed=self.speed,
            lag_buckets=lag_buckets,
            lag_sum=lag_sum,
            lag_count=lag_count,
            behind_ticks=behind,
            running=self.running,
            error=self.error,
        )


def _ended(probe: RunProbe, error: Optional[BaseException]) -> None:
    """Mark a run as over; an error (not a Ctrl-C or an exit) is shown, without secrets."""
    if error is not None and not isinstance(error, (KeyboardInterrupt, SystemExit)):
        probe.error = mask_secrets(f"{type(error).__name__}: {error}")
    probe.running = False


def _model_name(model: Any) -> str:
    name = getattr(model, "name", None)
    if name:
        return str(name)
    factory = getattr(model, "subject_factory", None)
    return f"{type(model).__name__} of {type(factory).__name__}"


# -- the server ----------------------------------------------------------------------------


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    owner: "MetricsServer"

    def handle_error(self, request: Any, client_address: Any) -> None:
        # socketserver prints the traceback to stderr; a library logs. What reaches here is a
        # client's own doing (it hung up mid-answer, say): the server goes on serving.
        _LOGGER.debug("metrics request from %s ended early", client_address, exc_info=True)


class MetricsServer:
    """Serves ``/metrics``, ``/`` and ``/healthz`` for the runs attached to it.

    The socket is bound when the server is made, so a port in use is reported
    (``ConfigurationError``) before a run starts. ``start(metrics_port=...)`` makes one for
    the run and closes it at the end; a server made by hand serves as long as it is open,
    across runs, and shows the last run's final numbers after it ended::

        with MetricsServer(9100) as server:
            datagen.start(speed=60, metrics=server)

    :param address: a port (served on ``127.0.0.1``), ``"HOST:PORT"`` or ``(host, port)``;
        port 0 picks a free one (see :attr:`port`).
    :param max_lag_ticks: /healthz fails while the pacer is more than this many ticks behind.
    :param history_seconds: how far back the status page's chart goes.
    :param refresh_seconds: how often the status page reloads itself.
    :param interval: seconds between two samples of the runs.
    :param name: the model's name on the page and in ``doge_run_info``; by default the
        generator's ``name`` attribute if it has one, else its subject factory's class.
    """

    def __init__(
        self,
        address: Union[int, str, Tuple[str, int]] = 0,
        *,
        max_lag_ticks: float = DEFAULT_MAX_LAG_TICKS,
        history_seconds: float = 300.0,
        refresh_seconds: float = 2.0,
        interval: float = 1.0,
        name: Optional[str] = None,
    ) -> None:
        host, port = parse_address(address)
        for option, value in (
            ("max_lag_ticks", max_lag_ticks),
            ("history_seconds", history_seconds),
            ("refresh_seconds", refresh_seconds),
            ("interval", interval),
        ):
            check_positive(option, value)
        self._exposition = _Exposition()
        self.max_lag_ticks = float(max_lag_ticks)
        self.name = None if name is None else mask_secrets(name)
        self.refresh_seconds = refresh_seconds
        self.history_seconds = history_seconds
        self.interval = interval
        self._lock = threading.Lock()
        self._probes: Dict[Optional[str], Any] = {}
        self._snapshots: Dict[Optional[str], Snapshot] = {}
        self._history: Deque[Tuple[float, Dict[str, int]]] = deque(
            maxlen=max(2, int(history_seconds / interval) + 1)
        )
        self._registry = self._exposition.make_registry(self)
        self._httpd = _bind(host, port)
        self._httpd.owner = self
        self.host = host
        self.port: int = self._httpd.server_address[1]
        self._closed = threading.Event()
        self._threads = [
            threading.Thread(
                target=self._httpd.serve_forever,
                kwargs={"poll_interval": 0.2},
                name=f"doge-metrics-http-{self.port}",
                daemon=True,
            ),
            threading.Thread(target=self._sample_loop, name="doge-metrics-sampler", daemon=True),
        ]
        for thread in self._threads:
            thread.start()
        _LOGGER.info("metrics, status page and /healthz on %s", self.url)

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        if host in ("0.0.0.0", "[::]"):
            host = "127.0.0.1" if host == "0.0.0.0" else "[::1]"
        return f"http://{host}:{self.port}/"

    # -- runs ------------------------------------------------------------------------------

    def attach(self, probe: Any) -> None:
        """Start watching a run (anything with ``snapshot()`` and ``shard``). A run without a
        shard replaces whatever was shown before; shards add up."""
        if self.name is not None:
            probe.name = self.name
        with self._lock:
            if probe.shard is None or None in self._probes:
                self._clear()
            self._probes[probe.shard] = probe
        self._take(probe)

    def watch(
        self, run: Any, sinks: Sequence[Any], labels: Sequence[str], **options: Any
    ) -> RunProbe:
        """Attach the engine's ``run`` (see :class:`RunProbe` for ``options``); return the
        probe to hand to :meth:`finish` when the run has closed its sinks."""
        probe = RunProbe(run, sinks, labels, **options)
        self.attach(probe)
        return probe

    def update(self, snapshot: Snapshot) -> None:
        """Show a snapshot sent from elsewhere (a shard in another process)."""
        with self._lock:
            self._snapshots[snapshot.shard] = snapshot
            self._probes.setdefault(snapshot.shard, None)

    def reset(self) -> None:
        """Forget every run shown so far (a new sharded run starts)."""
        with self._lock:
            self._clear()

    def _clear(self) -> None:
        self._probes.clear()
        self._snapshots.clear()
        self._history.clear()

    def finish(self, probe: Any, error: Optional[BaseException] = None) -> None:
        """The run ended: take its final numbers, which stay shown while the server is open."""
        _ended(probe, error)
        self._take(probe, final=True)
        self._record_history()

    def _take(self, probe: Any, final: bool = False) -> None:
        try:
            snapshot = probe.snapshot()
        except Exception:  # pragma: no cover - a probe must never break the run
            _LOGGER.debug("metrics snapshot failed", exc_info=True)
            return
        shard = probe.shard
        with self._lock:
            # A sample taken just before the run finished must not replace its final numbers.
            if self._probes.get(shard) is probe:
                self._snapshots[shard] = snapshot
                if final:
                    self._probes[shard] = None  # shown, no longer sampled

    def sample(self) -> None:
        """Read every attached run now (the sampler thread does this every ``interval``)."""
        with self._lock:
            probes = [p for p in self._probes.values() if p is not None]
        for probe in probes:
            self._take(probe)
        self._record_history()

    def _record_history(self) -> None:
        with self._lock:
            totals: Dict[str, int] = {}
            for snapshot in self._snapshots.values():
                for trigger, n in snapshot.events.items():
                    totals[trigger] = totals.get(trigger, 0) + n
            if self._snapshots:
                self._history.append((time.monotonic(), totals))

    def _sample_loop(self) -> None:
        while not self._closed.wait(self.interval):
            self.sample()

    def snapshots(self) -> List[Snapshot]:
        """The latest snapshot of each run or shard, in shard order."""
        with self._lock:
            return [self._snapshots[k] for k in sorted(self._snapshots, key=lambda s: str(s))]

    def health(self) -> Tuple[bool, List[str]]:
        """``(healthy, problems)``: a sink that failed records, a run that failed, or a pacer
        more than ``max_lag_ticks`` ticks behind."""
        problems: List[str] = []
        for snapshot in self.snapshots():
            where = f"shard {snapshot.shard}: " if snapshot.shard is not None else ""
            if snapshot.error:
                problems.append(f"{where}the run failed: {snapshot.error}")
            for sink in snapshot.sinks:
                if sink.failed:
                    problems.append(f"{where}sink {sink.label} failed {sink.failed} records")
            if snapshot.running and snapshot.behind_ticks > self.max_lag_ticks:
                problems.append(
                    f"{where}the pacer is {snapshot.behind_ticks:.1f} ticks behind "
                    f"(more than {self.max_lag_ticks:g})"
                )
        return not problems, problems

    def rates(self) -> List[Tuple[float, Dict[str, float]]]:
        """Events per second per trigger between consecutive samples: ``(seconds ago, rates)``."""
        with self._lock:
            history = list(self._history)
        if not history:
            return []
        now = history[-1][0]
        points = []
        for (t0, before), (t1, after) in zip(history, history[1:]):
            dt = t1 - t0
            if dt <= 0:
                continue
            points.append(
                (
                    now - t1,
                    {k: max(0, n - before.get(k, 0)) / dt for k, n in after.items()},
                )
            )
        return points

    # -- rendering -------------------------------------------------------------------------

    def render_metrics(self) -> Tuple[bytes, str]:
        return self._exposition.render(self._registry)

    def render_page(self) -> str:
        from doge_datagen.metrics.status_page import render_page

        return render_page(self)

    def render_health(self) -> Tuple[int, str]:
        # A probe acts on what it is told now, not on the last second's sample.
        with self._lock:
            probes = [p for p in self._probes.values() if p is not None]
        for probe in probes:
            self._take(probe)
        healthy, problems = self.health()
        body = json.dumps({"healthy": healthy, "problems": problems})
        return (200 if healthy else 503), body

    # -- life ------------------------------------------------------------------------------

    def close(self) -> None:
        if self._closed.is_set():
            return
        self._closed.set()
        self._httpd.shutdown()
        self._httpd.server_close()
        for thread in self._threads:
            thread.join(timeout=5)

    def __enter__(self) -> "MetricsServer":
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self._closed.is_set() else "serving"
        return f"<MetricsServer {self.url} {state}>"


class ShardReporter:
    """The metrics side of a shard that runs in another process (or on another machine).

    It stands in for a :class:`MetricsServer` in :func:`doge_datagen.engine.run` (the same
    ``watch``/``finish``), and hands a :class:`Snapshot` of the shard to ``send`` every
    ``interval`` seconds and once more at the end; the process that serves the metrics
    passes what it receives to :meth:`MetricsServer.update`. ``send`` is whatever carries
    picklable objects back (a multiprocessing queue, a Dask queue); if it fails, the shard
    goes on without metrics.
    """

    def __init__(self, send: Any, shard: str, interval: float = 1.0) -> None:
        self.send = send
        self.shard = shard
        self.interval = interval
        self._done = threading.Event()
        self._thread: Optional[threading.Thread] = None

    def watch(
        self, run: Any, sinks: Sequence[Any], labels: Sequence[str], **options: Any
    ) -> RunProbe:
        options["shard"] = self.shard
        probe = RunProbe(run, sinks, labels, **options)
        self._send(probe)
        self._thread = threading.Thread(
            target=self._loop, args=(probe,), name=f"doge-metrics-shard-{self.shard}", daemon=True
        )
        self._thread.start()
        return probe

    def _loop(self, probe: RunProbe) -> None:
        while not self._done.wait(self.interval):
            self._send(probe)

    def _send(self, probe: RunProbe) -> None:
        try:
            self.send(probe.snapshot())
        except Exception:
            _LOGGER.debug("shard %s: sending metrics failed", self.shard, exc_info=True)

    def finish(self, probe: RunProbe, error: Optional[BaseException] = None) -> None:
        self._done.set()
        if self._thread is not None:
            self._thread.join()
        _ended(probe, error)
        self._send(probe)


def open_metrics(
    metrics: Optional[MetricsServer], metrics_port: Union[int, str, None]
) -> Tuple[Optional[MetricsServer], bool]:
    """The server a run reports to, and whether the run made it (and so closes it): the
    caller's ``metrics``, or a new one on ``metrics_port``, bound before the run starts."""
    if metrics is not None and metrics_port is not None:
        raise ConfigurationError("give metrics or metrics_port, not both")
    if metrics is not None:
        if not isinstance(metrics, MetricsServer):
            raise ConfigurationError(f"metrics must be a MetricsServer, got {metrics!r}")
        return metrics, False
    if metrics_port is None:
        return None, False
    return MetricsServer(metrics_port), True


def _bind(host: str, port: int) -> _HTTPServer:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET

    class Server(_HTTPServer):
        address_family = family

    try:
        return Server((host, port), _Handler)
    except OSError as exc:
        where = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        if exc.errno == errno.EADDRINUSE:
            raise ConfigurationError(
                f"metrics address {where} is already in use: pick another --metrics-port "
                "(or 0 for a free one)"
            ) from exc
        raise ConfigurationError(
            f"metrics address {where} cannot be served: {exc.strerror or exc}"
        ) from exc


class _Handler(BaseHTTPRequestHandler):
    server: _HTTPServer
    server_version = "doge-datagen"

    def do_GET(self) -> None:  # noqa: N802 - the name http.server calls
        owner = self.server.owner
        path = self.path.split("?", 1)[0]
        try:
            if path == "/metrics":
                body, content_type = owner.render_metrics()
                self._send(200, body, content_type)
            elif path in ("/", "/index.html"):
                self._send(200, owner.render_page().encode(), "text/html; charset=utf-8")
            elif path == "/healthz":
                status, text = owner.render_health()
                self._send(status, text.encode(), "application/json")
            elif path == "/status.json":
                status_text = json.dumps(
                    {
                        "healthy": owner.health()[0],
                        "runs": [s.to_dict() for s in owner.snapshots()],
                    }
                )
                self._send(200, status_text.encode(), "application/json")
            else:
                self._send(404, b"not found: try /metrics, / or /healthz\n", "text/plain")
        except ConnectionError:
            # the client hung up before its answer was written (a scraper's timeout): nothing
            # to answer, and not a failure of the server
            _LOGGER.debug("metrics client hung up during %s", path)
        except Exception:  # pragma: no cover - answer, and keep serving
            _LOGGER.exception("metrics request %s failed", path)
            self._send(500, b"internal error\n", "text/plain")

    def _send(self, status: int, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        # http.server writes every request to stderr; a library logs instead.
        _LOGGER.debug("%s - %s", self.address_string(), format % args)


# -- Prometheus exposition ----------------------------------------------------------------


class _Exposition:
    """The parts of prometheus_client used here, imported when a server is made."""

    def __init__(self) -> None:
        optional_import("prometheus_client", "metrics", "Serving metrics")
        from prometheus_client import CollectorRegistry
        from prometheus_client import core as metric_core
        from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest

        self.core = metric_core
        self.registry_type = CollectorRegistry
        self.generate_latest = generate_latest
        self.content_type = CONTENT_TYPE_LATEST

    def make_registry(self, server: MetricsServer) -> Any:
        # A registry of its own: several servers (or runs) never clash in the global one.
        registry = self.registry_type(auto_describe=False)
        registry.register(_Collector(server, self.core))
        return registry

    def render(self, registry: Any) -> Tuple[bytes, str]:
        return self.generate_latest(registry), self.content_type


#: The metric families of a scrape, in the order it lists them: (key, kind, name, help, labels).
#: A sharded run's families have a ``shard`` label too.
_FAMILIES: Tuple[Tuple[str, str, str, str, Tuple[str, ...]], ...] = (
    ("info", "GaugeMetricFamily", "doge_run_info", "The run: model and seed.", ("model", "seed")),
    ("running", "GaugeMetricFamily", "doge_running", "1 while the run goes on.", ()),
    ("subjects_total", "GaugeMetricFamily", "doge_subjects_total", "Subjects in the run.", ()),
    (
        "events",
        "CounterMetricFamily",
        "doge_events",
        "Events emitted (moves taken), by trigger.",
        ("trigger",),
    ),
    (
        "vetoes",
        "CounterMetricFamily",
        "doge_vetoes",
        "Moves vetoed by an action callback, by trigger.",
        ("trigger",),
    ),
    ("states", "GaugeMetricFamily", "doge_subjects", "Subjects in each state.", ("state",)),
    (
        "sink_events",
        "CounterMetricFamily",
        "doge_sink_events",
        "Events handed to each sink.",
        ("sink",),
    ),
    (
        "delivered",
        "CounterMetricFamily",
        "doge_sink_delivered_records",
        "Records each sink delivered.",
        ("sink",),
    ),
    (
        "failed",
        "CounterMetricFamily",
        "doge_sink_failed_records",
        "Records each sink failed to deliver.",
        ("sink",),
    ),
    ("ticks", "CounterMetricFamily", "doge_ticks", "Ticks done.", ()),
    (
        "simulated",
        "GaugeMetricFamily",
        "doge_simulated_time_seconds",
        "The simulated clock: Unix time of the last tick done.",
        (),
    ),
    (
        "behind",
        "GaugeMetricFamily",
        "doge_pacing_behind_ticks",
        "How many ticks the pacer is behind its wall-clock schedule now.",
        (),
    ),
    (
        "lag",
        "HistogramMetricFamily",
        "doge_pacing_lag_seconds",
        "How late each tick was emitted against its wall-clock schedule.",
        (),
    ),
)


class _Collector:
    """Turns the latest snapshots into metric families at each scrape."""

    def __init__(self, server: MetricsServer, core: Any) -> None:
        self.server = server
        self.core = core

    def collect(self) -> Iterator[Any]:
        snapshots = self.server.snapshots()
        shard = ["shard"] if any(s.shard is not None for s in snapshots) else []
        families = {
            key: getattr(self.core, kind)(name, doc, labels=list(labels) + shard)
            for key, kind, name, doc, labels in _FAMILIES
        }
        for snapshot in snapshots:
            _add_snapshot(families, snapshot, [str(snapshot.shard)] if shard else [])
        yield from families.values()


def _add_snapshot(families: Dict[str, Any], s: Snapshot, shard: List[str]) -> None:
    """One run's (or one shard's) figures into the families; ``shard`` is its label value, or
    nothing for a run in one process."""

    def at(*labels: str) -> List[str]:
        return list(labels) + shard

    families["info"].add_metric(at(s.model, s.seed), 1)
    families["running"].add_metric(at(), 1 if s.running else 0)
    families["subjects_total"].add_metric(at(), s.subjects)
    for trigger, n in s.events.items():
        families["events"].add_metric(at(trigger), n)
    for trigger, n in s.vetoes.items():
        families["vetoes"].add_metric(at(trigger), n)
    for state, n in s.states.items():
        families["states"].add_metric(at(state), n)
    for sink in s.sinks:
        families["sink_events"].add_metric(at(sink.label), sink.events)
        if sink.delivered is not None or sink.failed is not None:
            families["delivered"].add_metric(at(sink.label), sink.delivered or 0)
            families["failed"].add_metric(at(sink.label), sink.failed or 0)
    families["ticks"].add_metric(at(), s.ticks_done)
    families["simulated"].add_metric(at(), s.simulated_time_ms / 1000.0)
    if s.lag_buckets is not None:
        families["behind"].add_metric(at(), s.behind_ticks)
        families["lag"].add_metric(
            at(), [(_bound(le), n) for le, n in zip(LAG_BUCKETS, s.lag_buckets)], s.lag_sum
        )


def _bound(le: float) -> str:
    return "+Inf" if le == math.inf else repr(le)
