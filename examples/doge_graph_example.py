"""Render the banking model's state graph.

python examples/doge_graph_example.py [-o doc/states.png]
"""

import argparse

from doge_example_common import create_example_data_online_generator

from doge_datagen import CountingSink, DataOnlineGeneratorGrapher


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("-o", "--output", default="doc/states.png", help="a .png or .svg path")
    args = parser.parse_args()
    sink = CountingSink()
    datagen = create_example_data_online_generator(sink, sink, sink, sink)
    path = DataOnlineGeneratorGrapher(datagen).render(args.output)
    print(f"state graph written to {path}")


if __name__ == "__main__":
    main()
