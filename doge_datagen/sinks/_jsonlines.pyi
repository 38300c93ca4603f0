"""Types of the C JSON Lines encoder (_jsonlines.c)."""

from typing import Any, Callable, Dict, FrozenSet, List, Optional, Sequence, Tuple

class Lines:
    names: Optional[Tuple[str, ...]]
    size: int
    def __init__(
        self, fallback: Callable[[Any], str], names: Optional[Tuple[str, ...]] = ...
    ) -> None: ...
    def append(self, record: Any) -> int: ...
    def append_values(self, values: Tuple[Any, ...]) -> int: ...
    def append_raw(self, text: bytes) -> int: ...
    def encode(self, record: Any) -> bytes: ...
    def encode_values(self, values: Tuple[Any, ...]) -> bytes: ...
    def take(self) -> bytes: ...
    def clear(self) -> None: ...
    def __len__(self) -> int: ...

class Collector:
    def __init__(
        self,
        function: Callable[..., Any],
        lines: Lines,
        kind: int,
        limit: int,
        drain: Callable[[], Any],
        fail: Callable[[Any, BaseException], Any],
        names: Optional[Tuple[str, ...]] = ...,
        convert: Optional[Callable[[Any], Tuple[Any, ...]]] = ...,
    ) -> None: ...
    def __call__(self, timestamp: int, subject: Any, transition: Any) -> None: ...

def subject_id(subject: Any) -> int: ...

class Row:
    values: Tuple[Any, ...]
    state: Any
    text: bytes
    key: Any
    subject_id: int
    def __init__(
        self, subject_id: int, key: Any, values: Tuple[Any, ...], state: Any, text: bytes
    ) -> None: ...

class Changes:
    updates: int
    def __init__(
        self,
        lines: Lines,
        keys: Dict[int, Any],
        last: Dict[Any, Any],
        readers: Dict[type, Tuple[Callable[[Any], Any], Lines, bool, int]],
        finals: FrozenSet[str],
        slow: Callable[[int, Any, Any], None],
        source: Callable[[int], bytes],
        drain: Callable[[], Any],
        limit: int,
    ) -> None: ...
    def __call__(self, timestamp: int, subject: Any, transition: Any) -> None: ...
    def created(
        self,
        subjects: List[Any],
        positions: Sequence[int],
        start: int,
        first: int,
        state: str,
        middle: bytes,
    ) -> int: ...
