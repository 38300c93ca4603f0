"""Checkpoints: a run's state between two ticks, written to a file, and a run that resumes
from one.

A checkpoint holds what the run cannot work out again: the tick reached (the next one to
run), the subjects (pickled, states and attributes as they are), each subject's pending move
(as a number: the move's position among the compiled tables' moves) and the tick it is due
at (the buckets of :attr:`Run.due`), the counts, the arrivals drawn so far, and each sink's
position (for a file, the byte offset after its lines were flushed and synced). Everything
else is drawn again from ``(seed, subject, tick)``: the compiled tables, the profiles'
timelines and ``datagen.random``'s streams. So the events a resumed run gives after the
checkpoint's tick are those of the uninterrupted run.

A model fingerprint (states, transitions, probabilities and profiles, seed, sizes, tick, start,
arrivals, sinks' names) is stored with it; a resume with a model that differs is refused,
naming what differs, unless forced.

The file is one pickle (format :data:`FORMAT`) after an 8-byte magic number, written to a
temporary file beside the target, synced and renamed over it: a checkpoint is whole or absent.
On Linux, a process with one thread has a forked copy of itself write the periodic checkpoints
while the run goes on (:meth:`Checkpointer.write`).
Subjects must therefore be picklable. Subjects of one class with the default pickling are
stored by columns (one list per slot, and their dicts): a million of them take a fraction of
a second to write instead of the ten seconds ``pickle`` takes object by object. Factories are
not stored: a factory that numbers its subjects itself (``create()`` without an index) starts
counting again in a resumed run.

What each sink holds after a resume: a file (JSON Lines, CSV) is cut back to the
checkpoint's offset, so it holds each event once; a Redis stream with ``explicit_ids`` refuses
the entries sent again; a SQL table (append mode) drops the rows committed after the
checkpoint, counted in a progress table in each batch's transaction. Every other sink is
flushed before a checkpoint is written and gets the events after it again (at least once).
A sink's own state (events held back by a disorder sink, a change-event sink's snapshot) is
not stored. In a sharded run each shard
writes and resumes from a checkpoint of its own
(:func:`doge_datagen.distributed.sharded.run_sharded`).
"""

import copyreg
import gc
import math
import os
import pickle
import signal
import time
from collections import deque
from itertools import repeat
from pathlib import Path
from typing import TYPE_CHECKING, Any, Dict, List, Optional, Sequence, Tuple

from doge_datagen.core.forking import fork_is_safe
from doge_datagen.engine.summary import sink_labels
from doge_datagen.errors import ConfigurationError

if TYPE_CHECKING:
    from doge_datagen.core.types import Model

# A run (engine.loop.Run, which imports this module when a run checkpoints) and its tables.
Run = Any
Table = List[Any]

__all__ = [
    "FORMAT",
    "Checkpointer",
    "differences",
    "fingerprint",
    "load",
    "restore",
    "run_options",
]

#: The layout of the pickled dict; a checkpoint of another format is refused.
FORMAT = 1
MAGIC = b"DOGECKP\x01"


def fingerprint(model: "Model", first: int, stop: int) -> Dict[str, Any]:
    """What a checkpoint is only valid for: the parts of the model that decide its events."""
    return {
        "states": list(model.states),
        "initial_state": model.initial_state,
        "transitions": [
            [t.trigger, t.from_state, t.to_state, repr(t.probability)] for t in model.transitions
        ],
        "seed": repr(model.seed),
        "subjects_num": model.subjects_num,
        "subjects": [first, stop],
        "ticks_num": model.ticks_num,
        "tick_ms": repr(model.tick_ms),
        "timestamp_start": model.timestamp_start,
        "arrivals": repr(model.arrivals),
        "sinks": sink_labels(model.sinks),
    }


def differences(stored: Dict[str, Any], current: Dict[str, Any]) -> List[str]:
    """The fingerprint's entries that differ, each as ``name: stored -> current``."""
    found = []
    for name in sorted(set(stored) | set(current)):
        was, now = stored.get(name), current.get(name)
        if was != now:
            if name == "transitions" and isinstance(was, list) and isinstance(now, list):
                changed = [repr(t) for t in now if t not in was]
                gone = [repr(t) for t in was if t not in now]
                found.append(
                    f"transitions: {', '.join(gone) or 'none'} -> {', '.join(changed) or 'none'}"
                )
            else:
                found.append(f"{name}: {was!r} -> {now!r}")
    return found


def _moves(tables: Sequence[Table]) -> Tuple[List[Any], Dict[int, int]]:
    """Every move object of the compiled tables, in a fixed order, and its position by id."""
    moves: List[Any] = []
    codes: Dict[int, int] = {}
    for table in tables:
        certain, _, _, _, listed, rest = table
        for move in (certain, *listed, rest):
            if move is not None and id(move) not in codes:
                codes[id(move)] = len(moves)
                moves.append(move)
    return moves, codes


def _slots(cls: type) -> Optional[List[Any]]:
    """The member descriptors of every slot of ``cls`` (its bases' too), or None when its
    instances are not pickled the default way (then they are pickled one by one)."""
    base: Any = object
    if (
        cls.__reduce_ex__ is not base.__reduce_ex__
        or cls.__reduce__ is not base.__reduce__
        or getattr(cls, "__getstate__", None) is not getattr(base, "__getstate__", None)
        or hasattr(cls, "__setstate__")
        or hasattr(cls, "__getnewargs_ex__")
        or hasattr(cls, "__getnewargs__")
        or cls in copyreg.dispatch_table
    ):
        return None
    found = []
    for klass in cls.__mro__:
        names = klass.__dict__.get("__slots__", ())
        for name in (names,) if isinstance(names, str) else names:
            if name in ("__dict__", "__weakref__"):
                continue
            if name.startswith("__") and not name.endswith("__"):
                name = f"_{klass.__name__.lstrip('_')}{name}"
            found.append(klass.__dict__[name])
    return found


def encode_subjects(subjects: List[Any]) -> Any:
    """The subjects as ``("columns", class, positions of None, slot columns, dicts)`` when
    they are of one class pickled the default way, else ``("objects", subjects)``."""
    kinds = set(map(type, subjects))
    with_gaps = type(None) in kinds
    kinds.discard(type(None))
    if len(kinds) == 1:
        cls = kinds.pop()
        slots = _slots(cls)
        if slots is not None:
            gaps: List[int] = []
            present = subjects
            if with_gaps:  # the positions of other shards' arrivals
                gaps = [i for i, subject in enumerate(subjects) if subject is None]
                present = [subject for subject in subjects if subject is not None]
            try:
                columns = [list(map(slot.__get__, present)) for slot in slots]
            except AttributeError:  # a slot without a value: one by one
                return ("objects", subjects)
            dicts: Any = None
            if cls.__dictoffset__:
                dicts = [subject.__dict__ for subject in present]
                if not any(dicts):
                    dicts = None
            return ("columns", cls, len(subjects), gaps, columns, dicts)
    return ("objects", subjects)


def decode_subjects(encoded: Any) -> List[Any]:
    """The subjects :func:`encode_subjects` stored."""
    if encoded[0] == "objects":
        return list(encoded[1])
    _, cls, count, gaps, columns, dicts = encoded
    made = list(map(cls.__new__, repeat(cls, count - len(gaps))))
    for slot, column in zip(_slots(cls) or [], columns):
        deque(map(slot.__set__, made, column), maxlen=0)
    if dicts is not None:
        for subject, values in zip(made, dicts):
            subject.__dict__.update(values)
    if not gaps:
        return made
    subjects: List[Any] = [None] * count
    gap_set = set(gaps)
    places = [i for i in range(count) if i not in gap_set]
    for i, subject in zip(places, made):
        subjects[i] = subject
    return subjects


class Checkpointer:
    """Writes a run's checkpoints to ``path``: every ``every`` seconds (of
    ``time.perf_counter``), between ticks, and when the run ends or stops."""

    def __init__(self, path: Any, every: Optional[float], fingerprint: Dict[str, Any]) -> None:
        self.path = Path(path)
        if every is not None and not (isinstance(every, (int, float)) and every > 0):
            raise ConfigurationError(f"checkpoint_every must be a positive number, got {every!r}")
        if not self.path.parent.is_dir():
            raise ConfigurationError(
                f"cannot write checkpoint {str(self.path)!r}: no directory "
                f"{str(self.path.parent)!r}"
            )
        self.every = math.inf if every is None else float(every)
        self.fingerprint = fingerprint
        # What a run killed while it wrote a checkpoint left beside it.
        for left in self.path.parent.glob(f".{self.path.name}.*.tmp"):
            try:
                left.unlink()
            except OSError:  # pragma: no cover - gone meanwhile, or not ours to remove
                pass
        #: The ``time.perf_counter()`` value from which the next checkpoint is due.
        self.next_at = time.perf_counter() + self.every
        #: How many checkpoints were written, and the seconds they took.
        self.written = 0
        self.seconds = 0.0
        self.size = 0
        #: Whether periodic checkpoints are written by a forked copy where that is safe,
        #: and how many were.
        self.fork = True
        self.forked = 0
        # The copy writing the last checkpoint: its pid, the pipe it reports on, the tick.
        self._child: Optional[Tuple[int, int, int]] = None

    def write(self, run: Run, final: bool = False) -> None:
        """Write the state of ``run``, which is between ticks (at ``run.ticks_done``).

        The sinks are flushed and their positions taken here, at the tick boundary. The rest
        (the subjects, pending moves and due ticks pickled, written, synced and renamed) is
        done by a copy of this process made with ``fork`` where that is safe (see
        :func:`can_fork`), while the run goes on: a million subjects take 0.5-1.5 s to write,
        which the run no longer waits for. ``final`` (the run's last checkpoint) and a process
        that cannot fork write here. Each write first waits for the copy that wrote the
        previous one; one that failed is a :class:`ConfigurationError` then, rather than a
        run that goes on with an older checkpoint than it believes.
        """
        began = time.perf_counter()
        self.wait()
        model = run.model
        positions = []
        for sink in model.sinks:
            # Every event before the checkpoint's tick leaves the sinks before it is written:
            # what a sink still held would be lost with a crash, and not made again.
            position = getattr(sink, "checkpoint_position", None)
            if callable(position):
                positions.append(position())
                continue
            flush = getattr(sink, "flush", None)
            if callable(flush):
                flush()
            positions.append(None)
        if not final and self.fork and can_fork():
            self._write_in_child(run, positions)
            self.forked += 1
        else:
            data = _encode(run, self.fingerprint, positions)
            _write_atomically(self.path, data)
            self.size = len(data)
        self.written += 1
        now = time.perf_counter()
        self.seconds += now - began
        self.next_at = now + self.every

    def _write_in_child(self, run: Run, positions: List[Any]) -> None:
        """Fork; the child writes the checkpoint and leaves with ``os._exit``, reporting to
        the parent through a pipe: ``b"\\0"`` and the size when the file is in place, else
        what went wrong."""
        reader, writer = os.pipe()
        # The run's objects, as they are now, out of the collector's reach while the child
        # lives: a collection in either process would otherwise write to every object's
        # header, and copy the pages the two processes share.
        gc.freeze()
        try:
            pid = os.fork()
        except BaseException:
            gc.unfreeze()
            os.close(reader)
            os.close(writer)
            raise
        if pid == 0:  # pragma: no cover - the child (its coverage is not collected)
            status = 1
            try:
                os.close(reader)
                # Ctrl-C or a SIGTERM sent to the process group stops the run, which waits
                # for this write before its last checkpoint; the write itself goes on.
                signal.signal(signal.SIGINT, signal.SIG_IGN)
                signal.signal(signal.SIGTERM, signal.SIG_IGN)
                data = _encode(run, self.fingerprint, positions)
                _write_atomically(self.path, data)
                report = b"\0" + str(len(data)).encode()
                status = 0
            except BaseException as exc:
                report = f"{type(exc).__name__}: {exc}".encode("utf-8", "replace")
            try:
                os.write(writer, report)
            finally:
                # Never the interpreter's exit: it would flush the sinks' buffers the child
                # inherited (their lines written twice) and run the parent's exit handlers.
                os._exit(status)
        os.close(writer)
        self._child = (pid, reader, run.ticks_done)

    def wait(self, check: bool = True) -> None:
        """Wait for the child writing the last checkpoint, if any; one that failed is a
        :class:`ConfigurationError` (unless not ``check``: a run that fails already)."""
        if self._child is None:
            return
        pid, reader, tick = self._child
        self._child = None
        try:
            chunks = []
            while True:
                chunk = os.read(reader, 65536)
                if not chunk:
                    break
                chunks.append(chunk)
        finally:
            os.close(reader)
        report = b"".join(chunks)
        status: Optional[int] = None
        try:
            _, status = os.waitpid(pid, 0)
        except ChildProcessError:  # reaped elsewhere (SIGCHLD ignored): the report says
            pass
        gc.unfreeze()
        if report.startswith(b"\0"):
            self.size = int(report[1:])
            return
        # Killed while it wrote: the temporary file it left goes.
        try:
            self.path.with_name(f".{self.path.name}.{pid}.tmp").unlink()
        except OSError:
            pass
        if not check:
            return
        if report:
            why = report.decode("utf-8", "replace")
        elif status is not None and os.WIFSIGNALED(status):
            why = f"killed by signal {os.WTERMSIG(status)}"
        else:
            why = "it exited without a word"
        raise ConfigurationError(
            f"the checkpoint of tick {tick} was not written to {str(self.path)!r} (process "
            f"{pid}, which wrote it while the run went on, failed: {why}); "
            f"{str(self.path)!r} holds an earlier checkpoint, if any"
        )


def can_fork() -> bool:
    """Whether a checkpoint can be written by a copy of this process made with ``fork``
    (:func:`~doge_datagen.core.forking.fork_is_safe`, the rule the shards of a sharded run
    follow too)."""
    return fork_is_safe()


def _encode(run: Run, fingerprint: Dict[str, Any], positions: List[Any]) -> bytes:
    """The checkpoint's bytes: the state of ``run`` between ticks, the sinks at
    ``positions``.

    The collector is off meanwhile: the columns and the subjects' dicts (which a class
    with slots under a base without them makes on first access) are a million new objects
    or more, which would set off full collections of the whole run, 0.5-1 s at a million
    subjects, for objects that form no cycle.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        return _encode_state(run, fingerprint, positions)
    finally:
        if enabled:
            gc.enable()


def _encode_state(run: Run, fingerprint: Dict[str, Any], positions: List[Any]) -> bytes:
    """What :func:`_encode` returns."""
    model = run.model
    _, codes = _moves(run.tables)
    codes[id(None)] = -1
    try:
        pending = list(map(codes.__getitem__, map(id, run.pending)))
    except KeyError:  # pragma: no cover - a move that is not the tables' own
        raise ConfigurationError("a pending move is not one of the run's tables") from None
    arrivals = run._arrivals
    state = {
        "format": FORMAT,
        "fingerprint": fingerprint,
        "seed": model.seed,
        "timestamp_start": run.timestamp_start,
        "tick": run.ticks_done,
        "timestamp": run.timestamp,
        "counts": list(run.counts),
        "vetoes": list(run.vetoes),
        "arrived": run.arrived,
        "next_arrival": run.next_arrival,
        "upcoming": list(run._upcoming),
        "arrivals": None if arrivals is None else [arrivals.total, arrivals.tick],
        "subjects": encode_subjects(run.subjects),
        "pending": pending,
        "due": run.due,
        "sinks": positions,
    }
    try:
        return MAGIC + pickle.dumps(state, protocol=pickle.HIGHEST_PROTOCOL)
    except Exception as exc:
        raise ConfigurationError(
            f"a checkpoint needs picklable subjects: {type(exc).__name__}: {exc}"
        ) from exc


def _write_atomically(path: Path, data: bytes) -> None:
    """``data`` into ``path`` whole or not at all: a temporary file beside it, synced, then
    renamed over it, and the directory synced so that the rename itself is kept."""
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(temporary, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temporary, path)
    except OSError as exc:
        try:
            temporary.unlink()
        except OSError:
            pass
        raise ConfigurationError(f"cannot write checkpoint {str(path)!r}: {exc}") from exc
    try:
        directory = os.open(path.parent, os.O_RDONLY)
    except OSError:  # pragma: no cover - a directory that cannot be opened (some systems)
        return
    try:
        os.fsync(directory)
    except OSError:  # pragma: no cover - directories that cannot be synced
        pass
    finally:
        os.close(directory)


def run_options(path: Any) -> Dict[str, Any]:
    """The seed and the (resolved) ``timestamp_start`` of the run that wrote the checkpoint
    at ``path``: a model built afresh (an unseeded one draws a seed of its own, a demo starts
    at the current minute) takes them to be the same model again."""
    state = _read(path)
    return {"seed": state["seed"], "timestamp_start": state["timestamp_start"]}


def load(path: Any, current: Dict[str, Any], force: bool = False) -> Dict[str, Any]:
    """The checkpoint at ``path``, checked against the ``current`` fingerprint: a model that
    differs is a :class:`ConfigurationError` naming what differs, unless ``force``."""
    state = _read(path)
    changed = differences(state["fingerprint"], current)
    if changed and not force:
        raise ConfigurationError(
            f"checkpoint {str(path)!r} was written by another model ("
            + "; ".join(changed)
            + "): resume with the model as it was, or force the resume"
        )
    return state


def _read(path: Any) -> Dict[str, Any]:
    """The checkpoint at ``path``, as written."""
    try:
        with open(path, "rb") as source:
            data = source.read()
    except OSError as exc:
        raise ConfigurationError(f"cannot read checkpoint {str(path)!r}: {exc.strerror}") from exc
    if not data.startswith(MAGIC):
        raise ConfigurationError(f"{str(path)!r} is not a doge-datagen checkpoint")
    try:
        state: Dict[str, Any] = pickle.loads(data[len(MAGIC) :])
    except Exception as exc:
        raise ConfigurationError(f"checkpoint {str(path)!r} cannot be read: {exc}") from exc
    if state.get("format") != FORMAT:
        raise ConfigurationError(
            f"checkpoint {str(path)!r} has format {state.get('format')!r}; this version "
            f"reads format {FORMAT}"
        )
    return state


def prepare_sinks(sinks: Sequence[Any], state: Dict[str, Any]) -> None:
    """Before the sinks open: each sink with a stored position goes back to it (a file is
    cut back to the checkpoint's offset)."""
    positions = state["sinks"]
    if len(positions) != len(sinks):
        raise ConfigurationError(
            f"the checkpoint holds {len(positions)} sinks' positions, the model has {len(sinks)}"
        )
    for sink, position in zip(sinks, positions):
        if position is None:
            continue
        resume_at = getattr(sink, "resume_at", None)
        if not callable(resume_at):
            raise ConfigurationError(f"sink {sink!r} cannot go back to a stored position")
        resume_at(position)


def restore(run: Run, state: Dict[str, Any], arrivals: Any) -> int:
    """Put the checkpoint's state into ``run`` (whose tables are compiled); return the tick
    the run goes on from."""
    moves, _ = _moves(run.tables)
    run.subjects = decode_subjects(state["subjects"])
    run.pending = [None if code < 0 else moves[code] for code in state["pending"]]
    if len(run.pending) != len(run.subjects):
        raise ConfigurationError("the checkpoint's subjects and pending moves do not match")
    run.due.clear()
    run.due.update(state["due"])
    run.counts[:] = state["counts"]
    run.vetoes[:] = state["vetoes"]
    run.arrived = state["arrived"]
    run.next_arrival = state["next_arrival"]
    run._upcoming = list(state["upcoming"])
    if arrivals is not None and state["arrivals"] is not None:
        arrivals.total, arrivals.tick = state["arrivals"]
    tick: int = state["tick"]
    run.ticks_done, run.timestamp = tick, state["timestamp"]
    return tick
