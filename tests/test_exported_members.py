"""The public surface: the documented names, lazily resolved, and the original module paths."""

import importlib

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
    "PrintingSink",
    "RecordError",
    "RunSummary",
    "SinkCloseError",
    "Subject",
    "SubjectFactory",
    "Transition",
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
    "doge_datagen.graph": ["DataOnlineGeneratorGrapher"],
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
