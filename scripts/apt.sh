# Sourced by setup-env.sh: apt_get, which runs apt-get and, while another process (an
# unattended upgrade, another install) holds the package lock, waits for it instead of
# failing at once with status 100. It says so once, and gives up after DOGE_APT_LOCK_WAIT
# seconds (600 by default), with apt-get's own message and status.
apt_get() {  # apt_get ARGS...
    local limit=${DOGE_APT_LOCK_WAIT:-600} poll=${DOGE_APT_LOCK_POLL:-5}
    local start=$SECONDS said="" out status
    while true; do
        status=0
        out=$(DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout="$poll" "$@" 2>&1) \
            || status=$?
        if [ "$status" = 0 ]; then
            return 0
        fi
        if ! grep -qiE "could not (get|open) lock|unable to (acquire|lock)" <<<"$out"; then
            printf '%s\n' "$out" >&2
            return "$status"
        fi
        if (( SECONDS - start >= limit )); then
            printf '%s\n' "$out" >&2
            echo "apt-get $1: another process still holds the package lock after ${limit} s" \
                "(DOGE_APT_LOCK_WAIT); giving up" >&2
            return "$status"
        fi
        if [ -z "$said" ]; then
            echo "apt-get $1: another process holds the package lock; waiting for it" \
                "(at most ${limit} s, DOGE_APT_LOCK_WAIT)" >&2
            said=1
        fi
        sleep "$poll"
    done
}
