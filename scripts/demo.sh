#!/usr/bin/env bash
# Install the package into .venv and run the banking demo on embedded defaults (no server):
# JSON Lines files and a SQLite database under ./doge-demo-out. Extra arguments go to
# 'doge-datagen demo' (see its --help).
source "$(dirname "$0")/setup-env.sh"
.venv/bin/doge-datagen demo "$@"
