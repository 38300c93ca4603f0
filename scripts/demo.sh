#!/usr/bin/env bash
# Install the package into .venv and run the banking demo on embedded defaults (no server).
# Extra arguments go to the demo.
source "$(dirname "$0")/setup-env.sh"
.venv/bin/python examples/doge_demo.py "$@"
