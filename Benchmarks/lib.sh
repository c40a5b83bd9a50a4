# Sourced by the benchmark scripts (after they set REPO and create their work
# directory W): the background server they start and stop by its PID, the
# exit cleanup, and the clock.
# shellcheck shell=sh

# The PID of the server this script started (the test vault's, moto_server), if any.
SERVER_PID=

# Stops that server by its PID (never by name) and reaps it.
stop_server() {
    if [ -n "$SERVER_PID" ] && kill "$SERVER_PID" 2>/dev/null; then
        wait "$SERVER_PID" 2>/dev/null || true
    fi
}

# The exit cleanup: the server, then the work directory. A script that holds
# more (a mount) defines its own `cleanup` after sourcing this file.
cleanup() {
    stop_server
    rm -rf "$W"
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP

# Serves VAULT's repositories (the test vault built by scripts/testvault/build-vault.sh)
# on a free loopback port; sets SERVER_PID and MIRROR.
start_vault_server() {
    python3 "$REPO/scripts/testvault/vault-server.py" --root "$1/vault" --port-file "$W/port" --pid-file "$W/pid" >/dev/null 2>&1 &
    SERVER_PID=$!
    for _ in $(seq 100); do [ -s "$W/port" ] && break; sleep 0.1; done
    # shellcheck disable=SC2034  # used by the sourcing script
    MIRROR=http://127.0.0.1:$(cat "$W/port")
}

now() { date +%s.%N; }
