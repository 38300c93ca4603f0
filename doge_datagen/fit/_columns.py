"""The fit of :mod:`doge_datagen.fit`, a chunk of rows at a time with numpy.

The row-by-row loop of ``fit.py`` costs about three times the parsing of a JSON line; this
one does per row only what must be done in Python (decoding just the needed fields, taking
them out, a lookup for the transition and, unless subject ids are small integers, one for the
subject, all in C through ``map``) and the rest on arrays. It gives the same result as the row
loop (the tests run both), for the cases it takes: no ``start=`` (so no rows before the
window) and no ``end=``; profiles are binned per chunk.

Rows are read a block at a time (a block of the file, or a slice of the rows) into columns of
numbers: subject, timestamp, transition key. The blocks are then folded in together, about
:data:`BATCH_ROWS` rows at a time: the work on arrays costs little per row, but a few
microseconds per call, and the subjects of a large batch, taken in order, read and write the
per-subject arrays almost in sequence instead of all over them.

How a batch is folded in: its rows are sorted by subject, stably, so each subject's rows stay
in log order; a row's previous row is the one before it in the sort, or, for the first row of
a subject in the batch, the last one of earlier batches (kept in arrays indexed by a dense
subject number). The exposure of a state is the sum of the times its spells are left minus
the sum of the times they are entered, so it is two ``bincount`` per batch; the first spell of
a subject (from the window start) and the censored last one (to the end) are added at the end.

Errors are those of the block by block fit: a bad row found while a block is read (a missing
field, a bad timestamp) is raised after the blocks before it are folded in, which may find an
earlier one; a batch with a bad row is folded again a block at a time, so that the error is
the one the earliest block gives (a fold writes the subjects' last rows, which the checks
read, only once its checks have passed).
"""

import gc
from collections import defaultdict
from itertools import count, islice
from operator import add, attrgetter, itemgetter
from typing import Any, Dict, Iterable, Iterator, List, Literal, Optional, Tuple, Union

import numpy as np

from doge_datagen.errors import RecordError
from doge_datagen.fit._rows import _BINS, _EVENT_BINS, _EXPO, _NAME, _Fit

CHUNK_ROWS = 32768
BLOCK_BYTES = 1 << 18
#: Rows folded in at once (see the module's docstring); a batch's columns take 32 bytes a row.
BATCH_ROWS = 1 << 18
#: Beyond this many distinct values a field is decoded as plain strings.
MAX_LITERALS = 256
#: Integer subject ids below this (4M: 96 MB of arrays), or below 4x the rows read, index the
#: per-subject arrays directly.
DIRECT_IDS = 1 << 22
_SPLIT = 1 << 24
#: A subject's row of the per-subject array as one item: its rows are copied in one go.
_TAIL_ROW = np.dtype((np.void, 24))


def _exact_bincount(codes: Any, values: Any, size: int) -> List[int]:
    """``bincount(codes, weights=values)`` as exact Python ints: summed as int64 where no sum
    can overflow it (``np.add.at``, quicker than ``bincount`` with weights), else as float64
    in two halves of 24 bits so that no partial sum loses precision."""
    if len(codes) == 0:
        return [0] * size
    if max(-int(values.min()), int(values.max())) < (1 << 62) // len(values):
        sums = np.zeros(size, dtype=np.int64)
        np.add.at(sums, codes, values)
        exact: List[int] = sums.tolist()
        return exact
    high, low = np.divmod(values, _SPLIT)
    hi = np.bincount(codes, weights=high, minlength=size)
    lo = np.bincount(codes, weights=low, minlength=size)
    return [int(h) * _SPLIT + int(lo_) for h, lo_ in zip(hi.tolist(), lo.tolist())]


class _BlockDecoder:
    """msgspec decoders of a block of JSON lines into the fields the fit reads (``names``:
    subject, timestamp, then the state or transition fields), as structs.

    The state and trigger fields take few values. Once seen, they are decoded as literals:
    msgspec then hands out the same string object every time, whose hash is kept and which
    compares by identity in the dict lookups. A block with a new value fails that decoder and
    is decoded again with plain strings, and the values learnt.

    The subject and the timestamp are decoded as integers (``ints``) while they are: their
    columns are then read straight into arrays, with no look at each value's type. The first
    block where either is a string (an id, a date-time) switches to decoders that take both."""

    def __init__(self, msgspec: Any, names: List[str]) -> None:
        self.msgspec = msgspec
        self.unique = list(dict.fromkeys(names))
        self.known: Dict[int, Dict[str, None]] = {i: {} for i in range(2, len(self.unique))}
        self.ints = True
        self.plain = self.make(False)
        self.literal: Any = None

    def make(self, literal: bool) -> Any:
        unique, msgspec = self.unique, self.msgspec
        number: Any = int if self.ints else Union[int, str]
        fields: List[Tuple[str, Any]] = [("f0", number), ("f1", number)]
        for i in range(2, len(unique)):
            values = tuple(self.known[i])
            fields.append((f"f{i}", Literal[values] if literal else str))
        row_type = msgspec.defstruct(
            "Row", fields, rename={f"f{i}": name for i, name in enumerate(unique)}, gc=False
        )
        return msgspec.json.Decoder(row_type)

    def decode(self, block: bytes, n: int) -> Any:
        """The rows of a block of ``n`` lines, or None if neither decoder takes it (a
        decoder may also return fewer rows than lines: blank lines are skipped)."""
        rows: Any = None
        for decoder in (self.literal, self.plain):
            if decoder is None:
                continue
            try:
                rows = decoder.decode_lines(block)
            except (self.msgspec.ValidationError, self.msgspec.DecodeError):
                continue
            if decoder is self.plain and len(rows) == n:
                self.learn(rows)
            return rows
        if self.ints:
            self.ints = False
            wider = self.make(False)
            try:
                rows = wider.decode_lines(block)
            except (self.msgspec.ValidationError, self.msgspec.DecodeError):
                self.ints = True  # not the ids nor the timestamps: read by lines
                return None
            self.plain = wider
            self.literal = None if self.literal is None else self.make(True)
            if len(rows) == n:
                self.learn(rows)
        return rows

    def learn(self, rows: Any) -> None:
        """The values of ``rows`` not yet known, learnt; a new literal decoder for them, or
        none once a field takes more than :data:`MAX_LITERALS` values."""
        learnt = False
        for i, values in self.known.items():
            new = set(map(attrgetter(f"f{i}"), rows)).difference(values)
            if new:
                values.update(dict.fromkeys(sorted(new)))
                learnt = True
        if learnt:
            few = all(len(v) <= MAX_LITERALS for v in self.known.values())
            self.literal = self.make(True) if few else None


class ColumnFit(_Fit):
    """The same fit as :class:`~doge_datagen.fit._Fit`, on chunks of rows."""

    @staticmethod
    def applies(fit: _Fit) -> bool:
        return fit.start is None and fit.end is None

    def setup(self) -> None:
        self.direct = True  # subject ids are their own numbers (see subject_numbers)
        self.sid_ids: Dict[Any, int] = defaultdict(count().__next__)
        self.key_ids: Dict[Any, int] = defaultdict(count().__next__)
        # key code -> (from or state code, to code or -1, transition record or trigger)
        self.key_info: List[Tuple[int, int, Any]] = []
        self.codes: Dict[str, int] = {}  # state name -> code
        self.records: List[List[Any]] = []  # code -> state record
        self.combo: Dict[Tuple[int, int, Any], List[Any]] = {}  # (from, to, trig) -> record
        self.capacity = 0
        # Per subject number: the tick (from the origin), state code (-1: not seen yet) and
        # line of its last row, side by side so that one subject is one cache line.
        self.tail = np.zeros((0, 3), dtype=np.int64)
        # Blocks read but not folded in yet: (lines, subject numbers, timestamps, key codes).
        self.pending: List[Tuple[Any, Any, Any, Any]] = []
        self.pending_rows = 0
        self.leave: Dict[int, int] = {}
        self.leave_n: Dict[int, int] = {}
        self.enter: Dict[int, int] = {}
        self.enter_n: Dict[int, int] = {}

    # -- codes --

    def code_of(self, name: Any, line: int, role: str) -> int:
        code = self.codes.get(name)
        if code is None:
            record = self.state_record(name, line, role)
            code = self.codes[name] = len(self.records)
            self.records.append(record)
        return code

    def grow(self, size: int) -> None:
        if size <= self.capacity:
            return
        capacity = max(size, 2 * self.capacity, 1024)
        last = np.zeros((capacity, 3), dtype=np.int64)
        last[:, 1] = -1
        last[: len(self.tail)] = self.tail
        self.tail = last
        self.capacity = capacity

    # -- reading --

    def feed(self, numbered: Iterable[Tuple[int, Any]]) -> None:
        self.setup()
        names = self.field_names()
        self.names = names
        self.get = itemgetter(*names)
        self.get_sid = itemgetter(names[0])
        self.get_ts = itemgetter(names[1])
        # A log of states without triggers: a row's key is its state alone (no tuple per row).
        self.single_key = self.state_log and not self.has_trigger
        self.get_key: Any
        if self.single_key:
            self.get_key = itemgetter(names[2])
        elif self.state_log:
            self.get_key = itemgetter(names[2], names[4])
        else:
            self.get_key = itemgetter(*names[2:])
        source: Iterator[Tuple[Any, List[Any], List[Any], List[Any]]]
        path = getattr(numbered, "path", None)
        if path is not None and getattr(numbered, "format", None) == "jsonl":
            source = self.jsonl_blocks(path)
        elif isinstance(numbered, (list, tuple)):  # rows in memory: a slice per chunk
            source = (
                self.columns(range(i + 1, i + 1 + len(rows)), rows) for i, rows in _sliced(numbered)
            )
        else:
            chunks = getattr(numbered, "chunks", None)
            rows_source = chunks() if chunks is not None else _chunked(iter(numbered))
            source = (self.columns(lines, rows) for lines, rows in rows_source)
        # The rows of a chunk are many small containers without cycles: the cyclic garbage
        # collector would walk them again and again for nothing while they are alive.
        collecting = gc.isenabled()
        gc.disable()
        try:
            self.fold_blocks(source)
        finally:
            if collecting:
                gc.enable()

    def fold_blocks(self, source: Iterator[Tuple[Any, Any, Any, Any]]) -> None:
        """Read every block of ``source`` and fold them in, a batch at a time."""
        blocks = iter(source)
        while True:
            try:
                block = next(blocks, None)
                if block is None:
                    break
                if not len(block[1]):
                    continue
                columns = self.block_columns(*block)
            except Exception:
                self.flush()  # the rows before the bad one may hold an earlier error
                raise
            self.pending.append(columns)
            self.pending_rows += len(columns[0])
            # A log of states with an initial state folds its first block alone: the initial
            # state then has its code where the block by block fit gives it.
            alone = self.state_log and self.initial_state not in self.codes
            if self.pending_rows >= BATCH_ROWS or (alone and self.initial_state is not None):
                self.flush()
        self.flush()

    def flush(self) -> None:
        """Fold in the blocks read so far (see the module's docstring for their errors)."""
        batch, self.pending, self.pending_rows = self.pending, [], 0
        if batch:
            self.fold_batch(batch)

    def fold_batch(self, batch: List[Tuple[Any, Any, Any, Any]]) -> None:
        """Fold in blocks as :meth:`block_columns` gives them: their timestamps checked
        (a timestamp off the tick grid is raised after the blocks before its own are folded
        in), then their moves."""
        if len(batch) == 1:
            lines, u, ts, k = batch[0]
        else:
            lines = _joined_lines([block[0] for block in batch])
            u, ts, k = (np.concatenate(column) for column in list(zip(*batch))[1:])
        assert self.origin is not None
        rel, off = np.divmod(ts - self.origin, self.tick)
        if off.any():
            i = int(np.argmax(off != 0))
            before = int(np.searchsorted(np.cumsum([len(block[1]) for block in batch]), i, "right"))
            if before:
                self.fold_batch(batch[:before])
            raise self.off_grid(int(ts[i]), int(lines[i]))
        lowest, highest = int(ts.min()), int(ts.max())
        self.lowest = lowest if self.lowest is None else min(self.lowest, lowest)
        self.highest = highest if self.highest is None else max(self.highest, highest)
        if isinstance(lines, range):
            lines = np.arange(lines.start, lines.stop, dtype=np.int64)
        if len(batch) == 1:
            self.fold(lines, u, rel, k)
            return
        try:
            self.fold(lines, u, rel, k)
        except RecordError:
            for block in batch:
                self.fold_batch([block])
            raise

    def columns(self, lines: Any, rows: List[Any]) -> Tuple[Any, List[Any], List[Any], List[Any]]:
        """The subject, timestamp and transition key of each row (mappings)."""
        try:
            return (
                lines,
                list(map(self.get_sid, rows)),
                list(map(self.get_ts, rows)),
                list(map(self.get_key, rows)),
            )
        except (KeyError, TypeError, IndexError):
            raise self.first_missing(lines, rows) from None

    def jsonl_blocks(self, path: str) -> Iterator[Tuple[Any, List[Any], List[Any], List[Any]]]:
        """A JSON Lines file a block at a time, decoded by msgspec into the fields the fit
        reads and nothing else (half the work of building a dict per row). A block msgspec
        refuses (a blank line, a field of another type, a missing field, bad JSON) is read
        again with the general reader, which names the line at fault or accepts the row."""
        try:
            import msgspec
        except ImportError:
            from doge_datagen.fit._rows import EventFile

            yield from (self.columns(lines, rows) for lines, rows in EventFile(path).chunks())
            return
        from doge_datagen.fit._rows import json_loader

        decoder = _BlockDecoder(msgspec, self.names)
        attr = [f"f{decoder.unique.index(name)}" for name in self.names]
        get_sid, get_ts = attrgetter(attr[0]), attrgetter(attr[1])
        get_key: Any
        if self.single_key:
            get_key = attrgetter(attr[2])
        elif self.state_log:
            get_key = attrgetter(attr[2], attr[4])
        else:
            get_key = attrgetter(*attr[2:])
        loads, error = json_loader()
        base = 1
        with open(path, "rb") as f:
            while True:
                block = f.read(BLOCK_BYTES)
                if not block:
                    return
                if not block.endswith(b"\n"):
                    block += f.readline()
                n = _newlines(block) + (0 if block.endswith(b"\n") else 1)
                rows = decoder.decode(block, n)
                if rows is not None and len(rows) == n:
                    lines = range(base, base + n)
                    sids: Any = None
                    if decoder.ints:  # integers, no booleans: straight into arrays
                        try:
                            sids = np.fromiter(map(get_sid, rows), np.int64, n)
                            stamps: Any = np.fromiter(map(get_ts, rows), np.int64, n)
                        except OverflowError:
                            sids = None
                    if sids is None:
                        sids, stamps = list(map(get_sid, rows)), list(map(get_ts, rows))
                    keys = self.key_codes(map(get_key, rows), n, lines)
                    rows = None  # freed now, its memory is reused by the next block's rows
                    yield lines, sids, stamps, keys
                else:
                    yield self.block_by_lines(path, block, base, loads, error)
                base += n

    def block_by_lines(
        self, path: str, block: bytes, base: int, loads: Any, error: Any
    ) -> Tuple[Any, List[Any], List[Any], List[Any]]:
        """A block msgspec refused, a line at a time with the general reader (``base``: the
        number of its first line)."""
        numbers: List[int] = []
        dicts: List[Any] = []
        for line_no, line in enumerate(block.splitlines(), base):
            if not line.strip():
                continue
            try:
                dicts.append(loads(line))
            except error as exc:
                raise RecordError(f"{path}, line {line_no}: not a JSON document ({exc})") from None
            numbers.append(line_no)
        return self.columns(numbers, dicts)

    def field_names(self) -> List[str]:
        names = [self.fields["subject"], self.fields["timestamp"]]
        if self.state_log:
            names += [self.fields["state"], self.fields["state"]]
            names.append(self.fields.get("trigger", self.fields["state"]))
        else:
            names += [self.fields["from_state"], self.fields["to_state"]]
            names.append(self.fields.get("trigger", self.fields["from_state"]))
        return names

    def first_missing(self, lines: Any, rows: List[Any]) -> RecordError:
        for line, row in zip(lines, rows):
            try:
                self.get(row)
            except (KeyError, TypeError, IndexError):
                return self.missing(row, int(line), self.names)
        raise AssertionError("no row is missing a field")  # pragma: no cover

    def key_codes(self, keys: Iterable[Any], n: int, lines: Any) -> Any:
        """The number of each of the ``n`` rows' transition key (``keys``: an iterable);
        keys not seen before are made, in the order of the rows."""
        known = len(self.key_ids)
        k = np.fromiter(map(self.key_ids.__getitem__, keys), np.int64, n)
        if len(self.key_ids) > known:
            for code, key in enumerate(list(self.key_ids)[known:], known):
                self.new_key(key, int(lines[int(np.argmax(k == code))]))
        return k

    def block_columns(self, lines: Any, sids: Any, raw_ts: Any, keys: Any) -> Tuple[Any, ...]:
        """A block's rows as arrays: ``(lines, subject numbers, timestamps, key codes)``
        (``lines`` stays a range when it is one). ``sids`` and ``raw_ts`` are lists of the
        values or int64 arrays; ``keys`` a list of keys or an array of key codes. The checks
        that need no look at single values are left to :meth:`fold_batch`."""
        n = len(sids)
        if not isinstance(lines, range):
            lines = np.asarray(lines, dtype=np.int64)
        u = self.subject_numbers(sids, lines)
        k = keys if isinstance(keys, np.ndarray) else self.key_codes(keys, n, lines)
        ts = raw_ts if isinstance(raw_ts, np.ndarray) else _array(raw_ts)
        if ts.dtype != np.int64:
            ts = np.array(
                [self.timestamp(v, int(line)) for v, line in zip(raw_ts, lines)], dtype=np.int64
            )
        if self.origin is None:
            self.origin = int(ts[0])
            self.residue = self.origin % self.tick
        self.rows += n
        return lines, u, ts, k

    def fold(self, lines: Any, u: Any, rel: Any, k: Any) -> None:
        """Fold in rows given as :meth:`block_columns` makes them (``rel``: ticks from the
        origin)."""
        assert self.origin is not None
        # The absolute tick of rel 0, shifted to Monday for weekly bins (see _Fit.bound).
        self.first_tick = (self.origin - self.residue) // self.tick + self.shift
        info = np.array([(a, b) for a, b, _ in self.key_info], dtype=np.int64).reshape(-1, 2)
        if self.state_log:
            self.state_chunk(lines, u, rel, k, info)
        else:
            self.transition_chunk(lines, u, rel, k, info)

    def subject_numbers(self, sids: List[Any], lines: Any) -> Any:
        """A number per subject, to index the per-subject arrays with.

        While the ids are small non-negative integers (no larger than a few times the rows
        read, so that the arrays stay in proportion to the log) they are their own numbers,
        with no lookup at all. Otherwise (strings, large or negative ids) each id gets the
        next number in a dict, inside ``map``'s C loop; ids already seen keep theirs."""
        n = len(sids)
        if self.direct:
            ids = sids if isinstance(sids, np.ndarray) else _array(sids)
            if ids.dtype == np.int64 and n:
                low, high = int(ids.min()), int(ids.max())
                if low >= 0 and high < max(DIRECT_IDS, 4 * (self.rows + n)):
                    self.grow(high + 1)
                    return ids
            # From now on, a dict: the ids seen so far (in the blocks folded in, so first
            # those read) keep their numbers.
            self.flush()
            self.direct = False
            seen = np.flatnonzero(self.tail[:, 1] >= 0).tolist()
            self.sid_ids = defaultdict(count(self.capacity).__next__, zip(seen, seen))
        if isinstance(sids, np.ndarray):
            sids = sids.tolist()
        known = len(self.sid_ids)
        u = np.fromiter(map(self.sid_ids.__getitem__, sids), np.int64, n)
        if len(self.sid_ids) > known:
            if None in self.sid_ids:
                i = sids.index(None)
                raise RecordError(
                    f"{self.at(int(lines[i]))}: field {self.fields['subject']!r} is empty"
                )
            self.grow(int(u.max()) + 1)
        return u

    def new_key(self, key: Tuple[Any, ...], line: int) -> int:
        if self.state_log:
            state, trigger = (key, key) if self.single_key else key
            code = self.code_of(state, line, "state")
            self.key_info.append((code, -1, trigger))
        else:
            record = self.transition_record(key, line)
            from_code = self.code_of(key[0], line, "from_state")
            to_code = self.code_of(key[1], line, "to_state")
            self.combo[(from_code, to_code, key[2])] = record
            self.key_info.append((from_code, to_code, record))
        return self.key_ids[key]

    # -- the two kinds of log --

    def groups(self, u: Any) -> Tuple[Any, Any, Any, Any]:
        """The chunk's rows by subject (stably): ``(order, subjects in that order, first row
        of each subject, last row of each)``; ``order`` is a slice when the rows already are
        (one subject, or a log by subject), so that taking the columns copies nothing."""
        n = len(u)
        shift = n.bit_length()
        if n < 2 or bool((u[1:] >= u[:-1]).all()):
            order: Any = slice(None)
            us = u
        elif self.capacity < 1 << (62 - shift):
            # Subject number and position in one int64: their sort (a fast, unstable one) is
            # the stable sort by subject, several times quicker.
            both = np.sort((u << shift) | np.arange(n))
            order = both & ((1 << shift) - 1)
            us = both >> shift
        else:  # pragma: no cover - more subjects than an int64 leaves room for
            order = np.argsort(u, kind="stable")
            us = u[order]
        change = us[1:] != us[:-1]
        first = np.empty(len(us), dtype=bool)
        first[0] = True
        first[1:] = change
        last = np.empty(len(us), dtype=bool)
        last[-1] = True
        last[:-1] = change
        return order, us, first, last

    def raise_first(self, found: List[Tuple[int, Any]]) -> None:
        """Raise the error of the earliest bad row among those found in a chunk."""
        found = [f for f in found if f is not None]
        if found:
            line, make = min(found, key=lambda f: f[0])
            raise make()

    def earliest(self, mask: Any, lines: Any) -> Optional[int]:
        if not mask.any():
            return None
        return int(np.argmin(np.where(mask, lines, np.iinfo(np.int64).max)))

    def transition_chunk(self, lines: Any, u: Any, rel: Any, k: Any, info: Any) -> None:
        F = info[:, 0][k]
        T = info[:, 1][k]
        order, us, first, last = self.groups(u)
        rs, Fs, Ts, Ls = rel[order], F[order], T[order], lines[order]
        found = self.move_errors(us, rs, Fs, Ts, Ls, ~first[1:])
        # Rows are taken by their indexes, not by a mask: several times quicker.
        at = np.flatnonzero(first)
        fu, fr, fF, fL = us[at], rs[at], Fs[at], Ls[at]
        prev = np.take(self.tail, fu, axis=0)
        seen = prev[:, 1] >= 0
        found += self.move_errors_after(fu, fr, fF, fL, prev, seen)
        self.raise_first(found)
        new = np.flatnonzero(~seen)
        self.add_first(fF[new], fr[new])
        self.add_moves(k, F, T, rel)
        at = np.flatnonzero(last)
        self.set_tail(us[at], rs[at], Ts[at], Ls[at])

    def move_errors(self, us: Any, rs: Any, Fs: Any, Ts: Any, Ls: Any, inner: Any) -> List[Any]:
        """The earliest row out of time order, and the earliest that does not move from
        where the row before it (of the same subject, ``inner``) left the subject."""
        found: List[Any] = []
        bad = inner & (rs[1:] <= rs[:-1])
        i = self.earliest(bad, Ls[1:])
        if i is not None:
            found.append(
                (
                    int(Ls[1:][i]),
                    self.order_error(
                        us[i + 1], rs[i + 1], rs[i], Ls[i], Ls[i + 1], Fs[i + 1], Ts[i]
                    ),
                )
            )
        bad_from = inner & (Fs[1:] != Ts[:-1])
        i = self.earliest(bad_from, Ls[1:])
        if i is not None:
            found.append(
                (
                    int(Ls[1:][i]),
                    self.from_error(us[i + 1], rs[i + 1], Fs[i + 1], Ts[i], Ls[i], Ls[i + 1]),
                )
            )
        return found

    def move_errors_after(
        self, fu: Any, fr: Any, fF: Any, fL: Any, prev: Any, seen: Any
    ) -> List[Any]:
        """:meth:`move_errors` for the first row of each subject in the chunk, against its
        last row of earlier chunks (``prev``, where ``seen``)."""
        prev_rel, prev_state, prev_line = prev[:, 0], prev[:, 1], prev[:, 2]
        found: List[Any] = []
        bad = seen & (fr <= prev_rel)
        i = self.earliest(bad, fL)
        if i is not None:
            found.append(
                (
                    int(fL[i]),
                    self.order_error(
                        fu[i], fr[i], prev_rel[i], prev_line[i], fL[i], fF[i], prev_state[i]
                    ),
                )
            )
        bad_from = seen & (fF != prev_state)
        i = self.earliest(bad_from, fL)
        if i is not None:
            found.append(
                (
                    int(fL[i]),
                    self.from_error(fu[i], fr[i], fF[i], prev_state[i], prev_line[i], fL[i]),
                )
            )
        return found

    def add_moves(self, k: Any, F: Any, T: Any, rel: Any) -> None:
        """The moves of a chunk (transition ``k`` from ``F`` to ``T`` at ``rel``): their
        counts, the spells they leave and enter, and the profile bins."""
        size = len(self.key_info)
        counts = np.bincount(k, minlength=size).tolist()
        # A move by key k leaves F(k) and enters T(k) at its tick: the spells' sums per key,
        # then per state.
        sums = _exact_bincount(k, rel, size)
        tick, origin, records = self.tick, self.origin, self.records
        assert origin is not None
        for (from_code, to_code, record), moves, total in zip(self.key_info, counts, sums):
            if moves:
                record[0] += moves
                delta = tick * total + origin * moves
                records[from_code][_EXPO] += delta
                records[to_code][_EXPO] -= delta
        if self.kind is not None:
            period = self.period
            size = len(self.key_info)
            by_bin = np.bincount(k * period + self.bins_of(rel), minlength=size * period)
            for code, row in enumerate(by_bin.reshape(size, period).tolist()):
                record = self.key_info[code][2]
                record[_EVENT_BINS] = list(map(add, record[_EVENT_BINS], row))
            self.add_bins(F, rel, 1)
            self.add_bins(T, rel, -1)

    def state_chunk(self, lines: Any, u: Any, rel: Any, k: Any, info: Any) -> None:
        S = info[:, 0][k]
        trig_codes = k  # the key (state, trigger) stands for the trigger too
        order, us, first, last = self.groups(u)
        rs, Ss, Ls, Ks = rel[order], S[order], lines[order], trig_codes[order]
        prev_rel, prev_state, prev_line = self.previous_rows(us, first, rs, Ss, Ls)
        has_prev = prev_state >= 0
        observe_only = not self.has_trigger
        if observe_only:
            # The same observation twice is dropped; it may repeat in a chain, so compare with
            # the previous row kept, found by propagating the last non-duplicate.
            dup = has_prev & (rs == prev_rel) & (Ss == prev_state)
            if dup.any():
                keep = ~dup
                us, rs, Ss, Ls, Ks = us[keep], rs[keep], Ss[keep], Ls[keep], Ks[keep]
                prev_rel, prev_state, prev_line = prev_rel[keep], prev_state[keep], prev_line[keep]
                has_prev = has_prev[keep]
                change = us[1:] != us[:-1]
                first = np.concatenate(([True], change))
                last = np.concatenate((change, [True]))
        bad = has_prev & (rs <= prev_rel)
        i = self.earliest(bad, Ls)
        if i is not None:
            make = self.order_error(
                us[i], rs[i], prev_rel[i], prev_line[i], Ls[i], Ss[i], prev_state[i]
            )
            raise make()
        fresh = first & ~has_prev
        if self.initial_state is not None and fresh.any():
            at = np.flatnonzero(fresh)
            init = self.code_of(self.initial_state, int(Ls[at[0]]), "state")
            self.add_first(np.full(len(at), init), rs[at])
            prev_state = np.where(fresh, init, prev_state)
            has_prev = prev_state >= 0
        F = np.where(has_prev, prev_state, -1)
        # Rows are taken by their indexes, not by a mask: several times quicker.
        event = np.flatnonzero(has_prev & ((F != Ss) | (not observe_only)))
        if len(event):
            self.add_events(F[event], Ss[event], Ks[event], rs[event], Ls[event])
        # Exposure: every row with a previous state leaves it; every row enters its state.
        leave = np.flatnonzero(has_prev)
        left, left_rel = F[leave], rs[leave]
        self.add_spells_masked(left, left_rel, Ss, rs)
        if self.kind is not None:
            self.add_bins(left, left_rel, 1)
            self.add_bins(Ss, rs, -1)
        at = np.flatnonzero(last)
        self.set_tail(us[at], rs[at], Ss[at], Ls[at])

    def set_tail(self, us: Any, rel: Any, states: Any, lines: Any) -> None:
        """The last rows of the subjects ``us`` (distinct): their ticks, states and lines.
        Each subject's row is written as one 24-byte item, not as three numbers."""
        rows = np.empty((len(us), 3), dtype=np.int64)
        rows[:, 0], rows[:, 1], rows[:, 2] = rel, states, lines
        self.tail.view(_TAIL_ROW).reshape(-1)[us] = rows.view(_TAIL_ROW).reshape(-1)

    def previous_rows(self, us: Any, first: Any, rs: Any, Ss: Any, Ls: Any) -> Tuple[Any, Any, Any]:
        """The tick, state and line of each row's previous row of its subject: the row before
        it, or for a subject's first row in the chunk its last of earlier chunks (state -1, and
        the lowest tick, for a subject not seen yet)."""
        n = len(us)
        before = np.take(self.tail, us[first], axis=0)
        seen = before[:, 1] >= 0
        prev_rel = np.empty(n, dtype=np.int64)
        prev_state = np.empty(n, dtype=np.int64)
        prev_line = np.empty(n, dtype=np.int64)
        prev_rel[1:], prev_state[1:], prev_line[1:] = rs[:-1], Ss[:-1], Ls[:-1]
        prev_rel[first] = np.where(seen, before[:, 0], np.iinfo(np.int64).min)
        prev_state[first] = before[:, 1]
        prev_line[first] = before[:, 2]
        return prev_rel, prev_state, prev_line

    def add_events(self, ev_f: Any, ev_s: Any, ev_k: Any, Rs_event: Any, ev_lines: Any) -> None:
        """Events of a state log, by (from, to, trigger key): ``ev_f`` to ``ev_s`` with the
        key ``ev_k``, at the ticks ``Rs_event`` on the lines ``ev_lines``."""
        observe_only = not self.has_trigger
        width = max(len(self.key_info), 1)
        size = max(len(self.records), 1)
        combined = (ev_f * size + ev_s) * width + ev_k
        # Sorted by combination, then line: each group starts at its earliest row, and
        # new transitions are made in the order of the log, as the row loop does.
        by = np.lexsort((ev_lines, combined))
        combined, ev_lines = combined[by], ev_lines[by]
        values, index, counts = np.unique(combined, return_index=True, return_counts=True)
        found = sorted(
            zip(ev_lines[index].tolist(), values.tolist(), index.tolist(), counts.tolist())
        )
        ev_bins = self.bins_of(Rs_event[by]) if self.kind is not None else None
        for _, value, at, events in found:
            rest, key_code = divmod(value, width)
            from_code, to_code = divmod(rest, size)
            trigger = self.key_info[key_code][2] if not observe_only else None
            record = self.combo.get((from_code, to_code, trigger))
            if record is None:
                names = (self.records[from_code][_NAME], self.records[to_code][_NAME])
                key = (*names, trigger if not observe_only else names[1])
                record = self.transition_record(key, int(ev_lines[at]))
                self.combo[(from_code, to_code, trigger)] = record
            record[0] += events
            if ev_bins is not None:
                row = np.bincount(ev_bins[at : at + events], minlength=self.period).tolist()
                record[_EVENT_BINS] = list(map(add, record[_EVENT_BINS], row))

    # -- accumulators --

    def add_first(self, states: Any, rel: Any) -> None:
        """Subjects whose first spell (in the states ``states``) runs from the window start."""
        size = len(self.records)
        counts = np.bincount(states, minlength=size).tolist()
        for code, subjects in enumerate(counts):
            if subjects:
                # The time the first spell ends at is in the spells' sums already.
                name = self.records[code][_NAME]
                self.first_n[name] = self.first_n.get(name, 0) + subjects
                self.first_sum.setdefault(name, 0)

    def add_spells_masked(self, F: Any, f_rel: Any, T: Any, t_rel: Any) -> None:
        """Left at ``f_rel`` from the states ``F``; entered at ``t_rel`` into the states ``T``
        (exposure in epoch ms: ``tick * rel + origin`` per row)."""
        size = len(self.records)
        tick, origin = self.tick, self.origin
        assert origin is not None
        out_n = np.bincount(F, minlength=size).tolist()
        out_sum = _exact_bincount(F, f_rel, size)
        in_n = np.bincount(T, minlength=size).tolist()
        in_sum = _exact_bincount(T, t_rel, size)
        for code in range(size):
            delta = tick * (out_sum[code] - in_sum[code]) + origin * (out_n[code] - in_n[code])
            if delta:
                self.records[code][_EXPO] += delta

    def bins_of(self, rel: Any) -> Any:
        """The profile bin (hour of the day or of the week) of each tick."""
        return ((rel + self.first_tick) // self.per_hour) % self.period

    def add_bins(self, states: Any, rel: Any, sign: int) -> None:
        """:meth:`_Fit.bound` for every row at once: a spell left (``sign`` 1) or entered
        (-1) at ``rel`` has its draws up to, or from, the tick after it."""
        if not len(states):
            return
        size, period, per_hour = len(self.records), self.period, self.per_hour
        whole, within = np.divmod(rel + self.first_tick + 1, per_hour * period)
        hour, rem = np.divmod(within, per_hour)
        q = _exact_bincount(states, whole, size)
        where = states * period + hour
        counts = np.bincount(where, minlength=size * period).reshape(size, period).tolist()
        rems = np.bincount(where, weights=rem, minlength=size * period).reshape(size, period)
        for code in range(size):
            bins = self.records[code][_BINS]
            bins[0] += sign * q[code]
            bins[1] = [a + sign * b for a, b in zip(bins[1], counts[code])]
            bins[2] = [a + sign * int(b) for a, b in zip(bins[2], rems[code].tolist())]

    def censor(self, end: int) -> int:
        states = self.tail[:, 1]
        states = states[states >= 0]
        # The time each last spell was entered at is in the spells' sums already.
        n = np.bincount(states, minlength=len(self.records)).tolist()
        for code, subjects in enumerate(n):
            if subjects:
                self.records[code][_EXPO] += subjects * (end - self.tick)
                if self.kind is not None:
                    self.bound(self.records[code], end, subjects)
        return len(states)

    # -- errors --

    def subject_of(self, code: Any) -> Any:
        """The id of the subject numbered ``code`` (itself, while ids are numbers)."""
        names = {number: sid for sid, number in self.sid_ids.items()}
        return names.get(int(code), int(code))

    def ms(self, rel: Any) -> int:
        assert self.origin is not None
        return int(rel) * self.tick + self.origin

    def order_error(self, u: Any, r: Any, pr: Any, pl: Any, line: Any, s: Any, ps: Any) -> Any:
        def make() -> RecordError:
            sid, ts, pts = self.subject_of(u), self.ms(r), self.ms(pr)
            if ts < pts:
                return RecordError(
                    f"{self.at(int(line))}: timestamp {ts} of subject {sid!r} is earlier than "
                    f"its previous row ({self.at(int(pl))}, timestamp {pts}): each subject's "
                    "rows must be in time order"
                )
            if self.state_log and int(s) != int(ps):
                return RecordError(
                    f"{self.at(int(line))}: subject {sid!r} is in two states at timestamp "
                    f"{ts}: {self.records[int(ps)][_NAME]!r} ({self.at(int(pl))}) and "
                    f"{self.records[int(s)][_NAME]!r}"
                )
            return RecordError(
                f"{self.at(int(line))}: subject {sid!r} has two moves at timestamp {ts} (the "
                f"other at {self.at(int(pl))}); a subject moves at most once per tick"
            )

        return make

    def from_error(self, u: Any, r: Any, f: Any, prev: Any, pl: Any, line: Any) -> Any:
        def make() -> RecordError:
            return RecordError(
                f"{self.at(int(line))}: subject {self.subject_of(u)!r} moves from "
                f"{self.records[int(f)][_NAME]!r} at timestamp {self.ms(r)}, but its previous "
                f"row ({self.at(int(pl))}) left it in {self.records[int(prev)][_NAME]!r}"
            )

        return make


def _joined_lines(parts: List[Any]) -> Any:
    """The line numbers of consecutive blocks (ranges or arrays) as one range or array."""
    if all(isinstance(p, range) for p in parts) and all(
        a.stop == b.start for a, b in zip(parts, parts[1:])
    ):
        return range(parts[0].start, parts[-1].stop)
    return np.concatenate(
        [np.arange(p.start, p.stop) if isinstance(p, range) else p for p in parts]
    )


def _newlines(block: bytes) -> int:
    """How many newlines ``block`` holds (numpy counts them several times faster than
    ``bytes.count``, which compares a byte at a time)."""
    return int(np.count_nonzero(np.frombuffer(block, dtype=np.uint8) == 10))


def _array(values: List[Any]) -> Any:
    """``np.array(values)``; plain ints (the common case) read as int64 without the type
    inference, several times faster."""
    if set(map(type, values)) == {int}:
        try:
            return np.fromiter(values, np.int64, len(values))
        except OverflowError:
            pass
    return np.array(values)


def _sliced(rows: Any) -> Iterator[Tuple[int, Any]]:
    """A list of rows as ``(position, slice)``, a chunk at a time."""
    for i in range(0, len(rows), CHUNK_ROWS):
        yield i, rows[i : i + CHUNK_ROWS]


def _chunked(iterator: Iterator[Tuple[int, Any]]) -> Iterator[Tuple[List[int], List[Any]]]:
    while True:
        pairs = list(islice(iterator, CHUNK_ROWS))
        if not pairs:
            return
        yield [line for line, _ in pairs], [row for _, row in pairs]
