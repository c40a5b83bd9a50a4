#!/bin/sh
# Benchmarks/upload/run.sh IMAGE [TRIALS] (env BIN: the centos6-ami binary, default the release build)
#
# The block phase of `register VERSION IMAGE` (PutSnapshotBlock of every
# non-zero 512 KiB block) against an SDK anchor: boto3 with 16 threads on one
# client (its connection pool keeps 16 connections alive), the same image, the
# same moto_server on 127.0.0.1 (started here, stopped by its PID), in one run.
# TRIALS (default 3) rounds, each boto3 then ours; the medians and their ratio
# are printed. Bar: ours <= 1.5x boto3.
#
# Also checked on every trial of ours: the blocks ListSnapshotBlocks lists are
# exactly the image's non-zero blocks (Python reads every byte), and a sampled
# block (the middle one) reads back (GetSnapshotBlock) identical to the file.
# Ours is timed as the tool times it (the "uploaded N blocks ... in S s" line:
# from the first block to the last answer, CompleteSnapshot excluded); boto3's
# the same way (StartSnapshot and CompleteSnapshot outside the clock).
# IMAGE is a built image (e.g. `centos6-ami install 6.9 /var/tmp/c69.img ...`);
# it is only read. Needs moto_server, the aws CLI and boto3 (scripts/setup-host.sh).
set -eu
REPO=$(cd "$(dirname "$0")/../.." && pwd)
BIN=${BIN:-$REPO/.build/release/centos6-ami}
IMAGE=${1:?usage: Benchmarks/upload/run.sh IMAGE [TRIALS]}
TRIALS=${2:-3}
[ -x "$BIN" ] || { echo "no binary at $BIN (swift build -c release first, or set BIN)" >&2; exit 1; }
[ -f "$IMAGE" ] || { echo "no image at $IMAGE" >&2; exit 1; }
python3 -c 'import boto3' 2>/dev/null || { echo "needs boto3 for the anchor (pip install boto3)" >&2; exit 1; }
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

# The non-zero blocks, one index a line.
python3 - "$IMAGE" >"$W/nonzero" <<'PY'
import sys
zero = bytes(524288); i = 0
with open(sys.argv[1], "rb") as f:
    while True:
        b = f.read(524288)
        if not b: break
        if b != zero[:len(b)]: print(i)
        i += 1
PY
NONZERO=$(wc -l <"$W/nonzero")

# The anchor: boto3, 16 threads sharing one client (max_pool_connections 16: keep-alive), each block with its SHA-256.
cat >"$W/anchor.py" <<'PY'
import base64, concurrent.futures, hashlib, sys, time
import boto3, botocore.config
image, endpoint, blocks_file = sys.argv[1:4]
blocks = [int(x) for x in open(blocks_file)]
ebs = boto3.client("ebs", endpoint_url=endpoint, region_name="ap-northeast-1",
                   config=botocore.config.Config(max_pool_connections=16, retries={"max_attempts": 4, "mode": "standard"}))
snap = ebs.start_snapshot(VolumeSize=8, Description="boto3 anchor")["SnapshotId"]
def put(index):
    with open(image, "rb") as f:
        f.seek(index * 524288)
        data = f.read(524288).ljust(524288, b"\0")
    digest = hashlib.sha256(data).digest()
    ebs.put_snapshot_block(SnapshotId=snap, BlockIndex=index, BlockData=data, DataLength=524288,
                           Checksum=base64.b64encode(digest).decode(), ChecksumAlgorithm="SHA256")
    return index, digest
start = time.monotonic()
with concurrent.futures.ThreadPoolExecutor(16) as pool:
    digests = dict(pool.map(put, blocks))
seconds = time.monotonic() - start
aggregate = base64.b64encode(hashlib.sha256(b"".join(digests[i] for i in sorted(digests))).digest()).decode()
ebs.complete_snapshot(SnapshotId=snap, ChangedBlocksCount=len(digests), Checksum=aggregate,
                      ChecksumAlgorithm="SHA256", ChecksumAggregationMethod="LINEAR")
print("%.3f %d %s" % (seconds, len(digests), snap))
PY

echo "image: $IMAGE ($(stat -c %s "$IMAGE") bytes, $(du -B1 "$IMAGE" | cut -f1) allocated); non-zero 512 KiB blocks: $NONZERO"
echo "ours: $BIN --upload-jobs 16; anchor: boto3 $(python3 -c 'import boto3; print(boto3.__version__)'), 16 threads; $(nproc) CPUs"
: >"$W/ours.times"
: >"$W/boto3.times"
T=1
while [ "$T" -le "$TRIALS" ]; do
    ANCHOR=$(python3 "$W/anchor.py" "$IMAGE" "$E" "$W/nonzero")
    BSECS=$(echo "$ANCHOR" | cut -d' ' -f1)
    BSENT=$(echo "$ANCHOR" | cut -d' ' -f2)
    echo "$BSECS" >>"$W/boto3.times"
    [ "$BSENT" = "$NONZERO" ] || { echo "boto3 sent $BSENT blocks, not $NONZERO" >&2; exit 1; }
    LOG=$W/register-$T.log
    "$BIN" register 6.9 "$IMAGE" --endpoint-url "$E" --upload-jobs 16 --poll 1 --build-id "bench-$T" \
        --results "$W/results.json" --log "$LOG" >/dev/null 2>"$W/err-$T" || { cat "$W/err-$T" >&2; exit 1; }
    SECS=$(sed -n 's/.*uploaded [0-9]* blocks ([0-9.]* MB) in \([0-9.]*\) s.*/\1/p' "$LOG" | tail -1)
    echo "$SECS" >>"$W/ours.times"
    SNAP=$(python3 -c 'import json,sys; print([a for a in json.load(open(sys.argv[1]))["amis"] if a["buildId"]==sys.argv[2]][0]["snapshotId"])' "$W/results.json" "bench-$T")
    aws ebs list-snapshot-blocks --snapshot-id "$SNAP" --endpoint-url "$E" --output json \
        | python3 -c 'import json,sys; print("\n".join(str(b["BlockIndex"]) for b in sorted(json.load(sys.stdin)["Blocks"], key=lambda b: b["BlockIndex"])))' >"$W/listed"
    LISTED=$(cmp -s "$W/listed" "$W/nonzero" && echo "equal to the non-zero blocks" || echo "DIFFERENT from the non-zero blocks")
    MID=$(sed -n "$(( (NONZERO + 1) / 2 ))p" "$W/nonzero")
    TOKEN=$(aws ebs list-snapshot-blocks --snapshot-id "$SNAP" --endpoint-url "$E" --output json \
        | python3 -c 'import json,sys; print([b["BlockToken"] for b in json.load(sys.stdin)["Blocks"] if b["BlockIndex"]==int(sys.argv[1])][0])' "$MID")
    aws ebs get-snapshot-block --snapshot-id "$SNAP" --block-index "$MID" --block-token "$TOKEN" --endpoint-url "$E" "$W/got" >/dev/null
    dd if="$IMAGE" of="$W/want" bs=524288 skip="$MID" count=1 2>/dev/null
    SAMPLE=$(cmp -s "$W/got" "$W/want" && echo "reads back identical" || echo "reads back DIFFERENT")
    printf 'trial %s: boto3 %.2f s, ours %.2f s (ratio %.2f); ListSnapshotBlocks: %s blocks, %s; block %s %s (load %s)\n' \
        "$T" "$BSECS" "$SECS" "$(echo "$SECS / $BSECS" | bc -l)" "$(wc -l <"$W/listed")" "$LISTED" "$MID" "$SAMPLE" "$(cut -d' ' -f1 /proc/loadavg)"
    T=$((T + 1))
done
median() { sort -n "$1" | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
B=$(median "$W/boto3.times")
O=$(median "$W/ours.times")
MB=$(echo "$NONZERO * 524288 / 1000000" | bc -l)
printf 'boto3 (16 threads):  %.2f s, %.1f MB/s (median of %s)\n' "$B" "$(echo "$MB / $B" | bc -l)" "$TRIALS"
printf 'ours (--upload-jobs 16): %.2f s, %.1f MB/s (median of %s)\n' "$O" "$(echo "$MB / $O" | bc -l)" "$TRIALS"
printf 'ratio ours/boto3:    %.2f (bar: <= 1.5)\n' "$(echo "$O / $B" | bc -l)"
