#!/bin/sh
# Benchmarks/upload/run.sh IMAGE [JOBS...] (env BIN: the centos6-ami binary)
#
# `register VERSION IMAGE` through the EBS direct APIs against moto_server on
# 127.0.0.1 (started here, stopped by its PID), once per JOBS value (default
# "4 8 16"). For each run it prints:
#  - the image's non-zero 512 KiB blocks, counted independently (Python reads
#    the whole file), and the blocks sent (put-snapshot-block calls in the log)
#    and listed by ListSnapshotBlocks: all three must be equal;
#  - the upload's wall time, MB/s of block data to the loopback moto, the wall
#    time per block, and the CPU time of one aws CLI call measured alone (each
#    block is one aws process: that start-up cost is what bounds the rate).
# IMAGE is a built image (e.g. `centos6-ami install 6.9 /var/tmp/c69.img ...`);
# it is only read. Needs moto_server and the aws CLI (scripts/setup-host.sh).
set -eu
REPO=$(cd "$(dirname "$0")/../.." && pwd)
BIN=${BIN:-$REPO/.build/debug/centos6-ami}
IMAGE=${1:?usage: Benchmarks/upload/run.sh IMAGE [JOBS...]}
shift
JOBS=${*:-4 8 16}
[ -x "$BIN" ] || { echo "no binary at $BIN (swift build first, or set BIN)" >&2; exit 1; }
[ -f "$IMAGE" ] || { echo "no image at $IMAGE" >&2; exit 1; }
W=$(mktemp -d /tmp/upload-bench.XXXXXX)
# shellcheck source=Benchmarks/lib.sh
. "$REPO/Benchmarks/lib.sh"

PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
moto_server -H 127.0.0.1 -p "$PORT" >"$W/moto.log" 2>&1 &
SERVER_PID=$!
for _ in $(seq 150); do curl -sf "http://127.0.0.1:$PORT/moto-api/" >/dev/null 2>&1 && break; sleep 0.2; done
export AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing AWS_SESSION_TOKEN=testing AWS_DEFAULT_REGION=ap-northeast-1 \
    AWS_CONFIG_FILE=/dev/null AWS_SHARED_CREDENTIALS_FILE=/dev/null AWS_EC2_METADATA_DISABLED=true AWS_PAGER=
E=http://127.0.0.1:$PORT

NONZERO=$(python3 - "$IMAGE" <<'PY'
import sys
zero = bytes(524288); n = 0
with open(sys.argv[1], "rb") as f:
    while True:
        b = f.read(524288)
        if not b: break
        if b != zero[:len(b)]: n += 1
print(n)
PY
)
ONE=$( { /usr/bin/time -f '%e %U %S' aws ec2 describe-regions --endpoint-url "$E" --output json >/dev/null; } 2>&1 | tail -1)
echo "image: $IMAGE ($(stat -c %s "$IMAGE") bytes, $(du -B1 "$IMAGE" | cut -f1) allocated); non-zero 512 KiB blocks: $NONZERO"
echo "one aws CLI call alone: wall/user/sys s = $ONE"
for J in $JOBS; do
    LOG=$W/register-$J.log
    S=$(date +%s.%N)
    "$BIN" register 6.9 "$IMAGE" --endpoint-url "$E" --upload-jobs "$J" --poll 1 --build-id "bench-$J" \
        --results "$W/results.json" --log "$LOG" >/dev/null 2>"$W/err-$J" || { cat "$W/err-$J" >&2; exit 1; }
    T=$(date +%s.%N)
    SNAP=$(python3 -c 'import json,sys; print([a for a in json.load(open(sys.argv[1]))["amis"] if a["buildId"]==sys.argv[2]][0]["snapshotId"])' "$W/results.json" "bench-$J")
    SENT=$(grep -c '^[^ ]* \$ aws ebs put-snapshot-block' "$LOG" || true)
    LISTED=$(aws ebs list-snapshot-blocks --snapshot-id "$SNAP" --endpoint-url "$E" --output json | python3 -c 'import json,sys; print(len(json.load(sys.stdin)["Blocks"]))')
    UP=$(grep -o 'uploaded [0-9]* blocks ([0-9.]* MB) in [0-9.]* s ([0-9.]* MB/s)' "$LOG" | tail -1)
    SECS=$(echo "$UP" | sed 's/.* in \([0-9.]*\) s.*/\1/')
    PERBLOCK=$(python3 -c "print('%.3f' % ($SECS / max(1, $SENT)))")
    echo "jobs $J: $UP; sent $SENT, listed $LISTED, non-zero $NONZERO ($( [ "$SENT" = "$NONZERO" ] && [ "$LISTED" = "$NONZERO" ] && echo equal || echo DIFFERENT)); ${PERBLOCK} s wall per block; register total $(python3 -c "print('%.1f' % ($T - $S))") s"
done
