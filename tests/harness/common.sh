# shellcheck shell=bash
# common.sh: what slapd.sh, samba.sh and ds389.sh share; sourced, not run.
# Sets PYTHON (unless set) and defines die, alive and watch_runner.

if [ -z "${PYTHON:-}" ]; then
        if [ -x /usr/bin/python3 ]; then PYTHON=/usr/bin/python3; else PYTHON=python3; fi
fi

die() {
        echo "${0##*/}: $*" >&2
        exit 1
}

# True if the process exists and is not a zombie (nobody may reap it here).
alive() {
        local pid=$1 state
        [ -n "$pid" ] || return 1
        state=$(sed -n 's/^State:[[:space:]]*\([A-Z]\).*/\1/p' "/proc/$pid/status" 2>/dev/null) || return 1
        [ -n "$state" ] && [ "$state" != Z ] && [ "$state" != X ]
}

# watch_runner PID DIR: if OB_SLAPD_WATCH_PID (the test runner) is set, a
# watcher stops the server PID when the runner ends, so a crashed test run
# leaves no server behind; its pid goes to DIR/watch.pid for cmd_stop.
watch_runner() {
        local pid=$1 dir=$2
        [ -n "${OB_SLAPD_WATCH_PID:-}" ] || return 0
        local watch=$OB_SLAPD_WATCH_PID
        (
                trap '' HUP
                while alive "$watch" && alive "$pid"; do
                        sleep 0.5
                done
                if alive "$pid"; then
                        kill -TERM "$pid" 2> /dev/null || true
                fi
        ) < /dev/null > /dev/null 2>&1 &
        echo $! > "$dir/watch.pid"
}
