#!/usr/bin/env bash
# Builds the test vault (a signed, EL-shaped CentOS 6 stand-in made from this
# machine's Debian packages) into OUT; see scripts/testvault/README.md for the
# layout. Rebuilt only when its inputs change: the generator's own files and
# the versions of the Debian packages it uses (installed and downloaded). A
# build goes to a temporary sibling directory that is renamed into place at
# the end, so an interrupted build never leaves a vault that looks complete.
#
#   scripts/testvault/build-vault.sh OUT        (needs root, rpm, createrepo-c, gnupg, kmod...)
#   VAULT_FORCE=1 scripts/testvault/build-vault.sh OUT   rebuild even when up to date
set -euo pipefail
[ $# -eq 1 ] || { echo "usage: $0 OUT" >&2; exit 64; }
here=$(cd "$(dirname "$0")" && pwd)
out=$(realpath -m "$1")
parent=$(dirname "$out")
debdir=$parent/vault-debs
mkdir -p "$parent"
started=$(date +%s%N)

for tool in rpmbuild rpmsign createrepo_c gpg dpkg-deb depmod python3 tar apt-get gcc patchelf; do
  command -v "$tool" >/dev/null || { echo "build-vault: '$tool' missing (run scripts/setup-host.sh)" >&2; exit 1; }
done

# The generator's own files (not the other helpers' servers and harness in this
# directory, not the README, not the test-side bootstrap script).
generator_files() {
  (cd "$here" && { echo build-vault.sh; echo vault.py; find files -type f; } | LC_ALL=C sort)
}
inputs_hash() {
  {
    generator_files | while read -r f; do printf '%s  %s\n' "$(sha256sum < "$here/$f" | cut -d' ' -f1)" "$f"; done
    python3 "$here/vault.py" inputs "$debdir"
  } | sha256sum | cut -d' ' -f1
}

# One build at a time per OUT.
exec 9>"$out.lock"
flock 9

hash=$(inputs_hash)
if [ -z "${VAULT_FORCE:-}" ] && [ -f "$out/.inputs-sha256" ] && [ "$(cat "$out/.inputs-sha256")" = "$hash" ] \
   && [ -f "$out/vault.json" ]; then
  echo "build-vault: $out is up to date ($(( ($(date +%s%N) - started) / 1000000 )) ms)" >&2
  exit 0
fi

# Leftovers of interrupted builds.
for stale in "$out".tmp.* "$out".old.*; do
  [ -e "$stale" ] && rm -rf -- "$stale"
done
work=$(mktemp -d "$out.tmp.XXXXXX")
trap 'rm -rf -- "$work"' EXIT
trap 'exit 130' INT TERM HUP
echo "build-vault: building into $work (inputs $hash)" >&2
python3 "$here/vault.py" build "$work" "$debdir"
echo "$hash" > "$work/.inputs-sha256"
du -sb "$work" | cut -f1 > "$work/.size-bytes"

# Swap into place: a reader sees either the old complete vault or the new one.
if [ -e "$out" ]; then
  old=$out.old.$$
  mv -- "$out" "$old"
  mv -- "$work" "$out"
  rm -rf -- "$old"
else
  mv -- "$work" "$out"
fi
trap - EXIT
elapsed=$(( ($(date +%s%N) - started) / 1000000000 ))
echo "build-vault: built $out in ${elapsed} s: $(find "$out/vault" -name '*.rpm' | wc -l) package files, $(du -sh "$out" | cut -f1) ($(cat "$out/.size-bytes") bytes)" >&2
