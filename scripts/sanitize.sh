#!/usr/bin/env bash
# The C loop under AddressSanitizer and UndefinedBehaviorSanitizer: builds doge_datagen/engine/_speedups.c
# with -fsanitize=address,undefined in a temporary copy of the package (the build in .venv is
# left alone), then runs the C loop's tests and the differential fuzzer (DOGE_FUZZ_EXAMPLES
# models, 200 unless set) from that copy. Any sanitizer report fails the script.
#
#     bash scripts/sanitize.sh [extra pytest arguments]
#
# Python's own allocator is switched off (PYTHONMALLOC=malloc) so that the lists the loop reads
# and writes are blocks of their own that ASan watches; leaks are not checked (the interpreter
# keeps much for good at exit).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
PYTHON=${PYTHON:-$ROOT/.venv/bin/python}

# A compiler and the sanitizers' run-time libraries (Debian: gcc brings libasan and libubsan).
need_tools() {
    command -v gcc >/dev/null 2>&1 || return 0
    case "$(gcc -print-file-name=libasan.so)" in /*) ;; *) return 0 ;; esac
    case "$(gcc -print-file-name=libubsan.so)" in /*) ;; *) return 0 ;; esac
    return 1
}
if need_tools; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        echo "installing gcc with its sanitizer libraries with apt-get" >&2
        source scripts/apt.sh
        apt_get update -qq && apt_get install -y -qq gcc
    fi
    if need_tools; then
        echo "sanitize.sh: gcc with libasan and libubsan is needed" >&2
        exit 1
    fi
fi
LIBASAN=$(gcc -print-file-name=libasan.so)

COPY=$(mktemp -d /tmp/doge-sanitize.XXXXXX)
trap 'rm -rf "$COPY"' EXIT
mkdir -p "$COPY/doge_datagen"
# The package's sources, the tests and the docs some tests read, without any built extension or
# byte code.
tar -C "$ROOT" --exclude='__pycache__' --exclude='*.so' -cf - doge_datagen tests setup.py setup.cfg \
    pyproject.toml README.md doc | tar -C "$COPY" -xf -

SANITIZE="-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all"
echo "building the C speed-ups with $SANITIZE" >&2
(
    cd "$COPY"
    CC=gcc CFLAGS="$SANITIZE -O1 -g" LDFLAGS="$SANITIZE" \
        "$PYTHON" setup.py -q build_ext --inplace >"$COPY/build.log" 2>&1
) || { cat "$COPY/build.log" >&2; exit 1; }

export LD_PRELOAD=$LIBASAN
export ASAN_OPTIONS=detect_leaks=0:abort_on_error=0:halt_on_error=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
export PYTHONMALLOC=malloc
export DOGE_FUZZ_EXAMPLES=${DOGE_FUZZ_EXAMPLES:-200}

# The copy's package is the one imported (the current directory comes first on sys.path), and
# its extension is the sanitized build.
cd "$COPY"
for module in engine._speedups sinks._jsonlines values._cvalues; do
    loaded=$("$PYTHON" -c "import doge_datagen.$module as m; print(m.__file__)")
    case "$loaded" in
        "$COPY"/*) ;;
        *) echo "sanitize.sh: doge_datagen.$module loaded from $loaded, not the sanitized build" >&2; exit 1 ;;
    esac
    symbols=$(nm -D "$loaded")
    grep -q __asan_ <<<"$symbols" || { echo "sanitize.sh: $loaded is not instrumented" >&2; exit 1; }
done

tests=()
# The C loop's tests, the fuzzer and the checkpoints (the loop pausing at a tick and giving its
# calendar back), then the tests of the package's other C code: the JSON Lines and CSV encoder
# (_jsonlines.c) and its change events' collector, the values (_cvalues.c) and the disordered
# sink's collector; and the worlds of several populations (a tick hook at every tick, ranges
# scheduled from a start, arrivals).
for file in tests/engine/test_speedups.py tests/engine/test_engine.py \
    tests/engine/test_loop_safety.py tests/engine/test_loop_fuzz.py tests/engine/test_checkpoint.py \
    tests/engine/test_long_profiled_runs.py tests/sinks/test_json_lines.py \
    tests/sinks/test_change_envelope_text.py tests/values/test_values.py \
    tests/values/test_cvalues.py tests/sinks/test_disorder.py tests/populations/test_world.py; do
    [ -f "$file" ] && tests+=("$file")
done
status=0
"$PYTHON" -m pytest -q -p no:cacheprovider "${tests[@]}" "$@" >"$COPY/pytest.log" 2>&1 || status=$?
tail -n 15 "$COPY/pytest.log"
if grep -qE "ERROR: AddressSanitizer|runtime error:|ERROR: LeakSanitizer|SUMMARY: (Address|UndefinedBehavior)Sanitizer" \
    "$COPY/pytest.log"; then
    echo "sanitize.sh: a sanitizer reported an error:" >&2
    grep -E -A30 "ERROR: AddressSanitizer|runtime error:" "$COPY/pytest.log" | head -n 80 >&2
    exit 1
fi
exit "$status"
