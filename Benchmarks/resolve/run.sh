#!/bin/bash
# Parse + resolve benchmark: ours vs `dnf makecache` (libsolv) on the same
# generated CentOS-6-sized repository (~6,700 packages, ~30 MB primary.xml),
# in the same run. Prints both medians and the ratio. Bar: ours no slower.
#
# ours = `centos6-ami rpm resolve --repo DIR --group core --extra kernel
#         --extra grub --extra xfsprogs`: read repomd.xml, check primary.xml.gz
#         and comps against its sha256 + size (and primary's open-checksum),
#         gunzip, parse, and resolve the closure of the core group + extras.
# dnf  = `dnf makecache` with a throwaway installroot/cachedir and a repo at
#         file://DIR: reads repomd, checks and parses primary (+ comps) with
#         libsolv and writes its solv cache. (It resolves nothing.)
#
# usage: Benchmarks/resolve/run.sh [CENTOS6_AMI_BINARY] [RUNS]
#   without a binary, builds a release binary into .build-bench first.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
bin=${1:-}
runs=${2:-5}
if [ -z "$bin" ]; then
  swift build -c release --scratch-path "$root/.build-bench" --product centos6-ami >&2
  bin=$root/.build-bench/release/centos6-ami
fi
command -v dnf >/dev/null || { echo "dnf is not installed (apt-get install dnf)" >&2; exit 1; }
work=$(mktemp -d /tmp/resolve-bench.XXXXXX)
trap 'rm -rf "$work"' EXIT

python3 "$here/gen-repo.py" "$work/repo"

mkdir -p "$work/dnf"
cat > "$work/dnf/dnf.conf" <<CONF
[main]
cachedir=/cache
reposdir=$work/dnf/repos.d
gpgcheck=0
keepcache=0
[bench]
name=bench
baseurl=file://$work/repo
enabled=1
gpgcheck=0
metadata_expire=0
CONF

now() { date +%s.%N; }
median() { sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }

ours=() dnfs=()
for _ in $(seq "$runs"); do
  # Alternate, so neither side enjoys a warmer page cache.
  t0=$(now)
  "$bin" rpm resolve --repo "$work/repo" --group core --extra kernel --extra grub --extra xfsprogs > "$work/ours.out" 2> "$work/ours.err"
  t1=$(now)
  ours+=("$(awk -v a="$t0" -v b="$t1" 'BEGIN{print b-a}')")
  rm -rf "$work/dnf/root"
  t0=$(now)
  dnf -q -c "$work/dnf/dnf.conf" --installroot="$work/dnf/root" --releasever=6 --disablerepo='*' --enablerepo=bench makecache >/dev/null
  t1=$(now)
  dnfs+=("$(awk -v a="$t0" -v b="$t1" 'BEGIN{print b-a}')")
  [ -s "$work/dnf/root/cache/bench.solv" ] || { echo "dnf wrote no solv cache" >&2; exit 1; }
done
o=$(printf '%s\n' "${ours[@]}" | median)
d=$(printf '%s\n' "${dnfs[@]}" | median)
echo "repository:  $(head -1 "$work/ours.err")"
printf 'ours (verify + parse + resolve core closure): median %.3f s  (runs: %s)\n' "$o" "$(printf '%.3f ' "${ours[@]}")"
printf 'dnf makecache (libsolv):                      median %.3f s  (runs: %s)\n' "$d" "$(printf '%.3f ' "${dnfs[@]}")"
awk -v o="$o" -v d="$d" 'BEGIN { printf "ratio dnf/ours: %.2fx  -> %s\n", d / o, (o <= d ? "PASS (ours no slower than dnf)" : "FAIL (ours slower than dnf)") }'
