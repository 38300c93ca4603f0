# Sourced by the other scripts: a virtualenv in .venv with the package (and the extras named in
# DOGE_EXTRAS), Graphviz's dot for rendering state graphs, and, with DOGE_NEEDS_BROWSER=1,
# Chromium for the status page's browser test.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
PYTHON=${PYTHON:-python3}
source scripts/apt.sh
if ! command -v dot >/dev/null 2>&1; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        echo "installing graphviz (dot) with apt-get" >&2
        apt_get update -qq && apt_get install -y -qq graphviz
    else
        echo "warning: Graphviz's dot is not installed; rendering state graphs will fail" >&2
    fi
fi
if [ "${DOGE_NEEDS_BROWSER:-0}" = 1 ] && ! command -v chromium >/dev/null 2>&1; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        echo "installing chromium (headless browser for the status page test) with apt-get" >&2
        apt_get update -qq && apt_get install -y -qq chromium
    else
        echo "warning: chromium is not installed; the status page's browser test will fail" >&2
    fi
fi
if [ ! -x .venv/bin/python ]; then
    "$PYTHON" -m venv .venv
fi
# pip's chatter goes to a log, shown only if the install fails.
# The editable install is "strict": the package's files are linked into build/__editable__.*,
# which one plain line of a .pth file puts on sys.path, as a regular install puts
# site-packages. The default mode installs an import hook instead, whose own imports cost every
# new interpreter about 14 ms at start-up: the command, and each sharded run's workers' server,
# which the shards wait for. (A module added to the package needs this script run again.)
install_log=.venv/install.log
if ! { .venv/bin/python -m pip install -q --disable-pip-version-check -U pip \
       && .venv/bin/python -m pip install -q --disable-pip-version-check \
              --config-settings editable_mode=strict -e ".${DOGE_EXTRAS:+[$DOGE_EXTRAS]}"; } \
       > "$install_log" 2>&1; then
    cat "$install_log" >&2
    echo "installing doge-datagen into .venv failed (log above)" >&2
    exit 1
fi
# An editable install leaves the package's bytecode to be written on first import, which an
# environment with PYTHONDONTWRITEBYTECODE never does: every process would compile every
# module again (about 25 ms each). Compile it once, as a regular install does.
.venv/bin/python -m compileall -q doge_datagen build/__editable__.*/doge_datagen > /dev/null
