"""The banking model publishing JSON messages to an MQTT broker, one topic level per user.

    python examples/doge_mqtt_example.py [--host HOST] [--port PORT] [--topic PREFIX]
        [--qos 0|1|2] [--subjects N] [--ticks N] [--seed S]

The broker defaults to $DOGE_MQTT_HOST:$DOGE_MQTT_PORT, else localhost:1883. Events go to
``PREFIX/USER_ID``; watch them with ``mosquitto_sub -t 'doge/events/#' -v``. With QoS 1 or 2
the run counts a message as delivered when the broker acknowledges it.
"""

import argparse
import os
import sys

from doge_example_common import add_run_arguments, run_into, user_row

from doge_datagen import MqttSinkFactory, Transition


def key_function(subject, transition: Transition) -> str:
    return str(subject.user_id)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--host", default=os.environ.get("DOGE_MQTT_HOST", "localhost"))
    parser.add_argument("--port", type=int, default=int(os.environ.get("DOGE_MQTT_PORT", "1883")))
    parser.add_argument("--topic", default="doge/events")
    parser.add_argument("--qos", type=int, choices=[0, 1, 2], default=1)
    add_run_arguments(parser)
    args = parser.parse_args()

    factory = MqttSinkFactory(args.host, args.port)
    sink = factory.create(args.topic, key_function, user_row, qos=args.qos)
    return run_into(sink, args)


if __name__ == "__main__":
    sys.exit(main())
