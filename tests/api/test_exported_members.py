"""The public surface: the documented names, lazily resolved, and the original module paths."""

import importlib
import subprocess
import sys

import doge_datagen

DOCUMENTED = {
    "ConfigurationError",
    "CountingSink",
    "DataOnlineGenerator",
    "DataOnlineGeneratorGrapher",
    "DbSink",
    "DbSinkFactory",
    "DeliveryError",
    "DogeError",
    "EventSink",
    "FileSink",
    "FileSinkFactory",
    "InMemorySink",
    "KafkaAvroSinkFactory",
    "KafkaSink",
    "KafkaSinkFactory",
    "MqttSink",
    "MqttSinkFactory",
    "NatsSink",
    "NatsSinkFactory",
    "ParquetSink",
    "ParquetSinkFactory",
    "PrintingSink",
    "RabbitMQSink",
    "RabbitMQSinkFactory",
    "RecordError",
    "RedisStreamSink",
    "RedisStreamSinkFactory",
    "RunSummary",
    "SinkCloseError",
    "Subject",
    "SubjectFactory",
    "Transition",
    "World",
    "event_id",
    "load",
    "__version__",
}

ORIGINAL_PATHS = {
    "doge_datagen.doge": [
        "DataOnlineGenerator",
        "Subject",
        "SubjectFactory",
        "Transition",
        "EventSink",
    ],
    "doge_datagen.printing_sink": ["PrintingSink"],
    "doge_datagen.kafka_sink_factory": ["KafkaSinkFactory", "KafkaSink"],
    "doge_datagen.kafka_avro_sink_factory": ["KafkaAvroSinkFactory"],
    "doge_datagen.db_sink_factory": ["DbSinkFactory", "DbSink"],
    "doge_datagen.analysis.graph": ["DataOnlineGeneratorGrapher"],
}

# Every public name the sink modules had before they moved into doge_datagen.sinks, and the
# module each one lives in now.
MOVED_SINK_MODULES = {
    "doge_datagen.printing_sink": (
        "doge_datagen.sinks.printing",
        ["FormatFunction", "PrintingSink", "default_format"],
    ),
    "doge_datagen.memory_sink": (
        "doge_datagen.sinks.memory",
        ["CountingSink", "Event", "InMemorySink"],
    ),
    "doge_datagen.file_sink": (
        "doge_datagen.sinks.file",
        [
            "DEFAULT_BUFFER_LINES",
            "FORMATS",
            "FileSink",
            "FileSinkFactory",
            "PathOrStream",
            "ValueFunction",
        ],
    ),
    "doge_datagen.kafka_sink_factory": (
        "doge_datagen.sinks.kafka",
        ["KafkaSink", "KafkaSinkFactory", "KeyFunction", "POLL_EVERY", "ValueFunction"],
    ),
    "doge_datagen.kafka_avro_sink_factory": (
        "doge_datagen.sinks.kafka_avro",
        ["KafkaAvroSinkFactory"],
    ),
    "doge_datagen.db_sink_factory": (
        "doge_datagen.sinks.db",
        [
            "COPY",
            "DEFAULT_BATCH_SIZE",
            "EXECUTEMANY",
            "INSERT",
            "DbSink",
            "DbSinkFactory",
            "RowMapper",
        ],
    ),
}


def test_all_is_exactly_the_documented_names_and_sorted():
    assert set(doge_datagen.__all__) == DOCUMENTED
    assert doge_datagen.__all__ == sorted(
        doge_datagen.__all__, key=lambda n: (n.startswith("_"), n)
    )


def test_every_exported_name_resolves():
    for name in doge_datagen.__all__:
        assert getattr(doge_datagen, name) is not None, name


def test_original_module_paths_define_the_same_objects():
    for module_name, names in ORIGINAL_PATHS.items():
        module = importlib.import_module(module_name)
        for name in names:
            assert getattr(module, name) is getattr(doge_datagen, name), (module_name, name)


def test_every_public_name_of_the_moved_sink_modules_resolves_to_the_same_object():
    for old_name, (new_name, names) in MOVED_SINK_MODULES.items():
        old = importlib.import_module(old_name)
        new = importlib.import_module(new_name)
        for name in names:
            assert getattr(old, name) is getattr(new, name), (old_name, name)
        assert sorted(old.__all__) == sorted(names), old_name


def test_the_sinks_package_resolves_its_names_lazily():
    import doge_datagen.sinks as sinks

    for name in sinks.__all__:
        assert getattr(sinks, name) is not None, name
    for name in set(sinks.__all__) & set(doge_datagen.__all__):
        assert getattr(sinks, name) is getattr(doge_datagen, name), name


def test_importing_the_package_imports_nothing_else_until_a_name_is_used():
    code = (
        "import sys, doge_datagen\n"
        "print(sorted(m for m in sys.modules if m.startswith('doge_datagen')))\n"
        "print(doge_datagen.doge.DataOnlineGenerator is doge_datagen.DataOnlineGenerator)\n"
        "print('doge_datagen.engine.loop' in sys.modules)\n"
        "try:\n"
        "    doge_datagen.no_such_name\n"
        "except AttributeError as exc:\n"
        "    print(exc)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.splitlines() == [
        "['doge_datagen']",
        "True",
        "True",
        "module 'doge_datagen' has no attribute 'no_such_name'",
    ]
