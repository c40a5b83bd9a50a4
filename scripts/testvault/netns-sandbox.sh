#!/bin/sh
# netns-sandbox.sh DIR COMMAND [ARG...]
#
# Runs COMMAND as if on a fresh instance, without touching the host: inside a
# PRIVATE mount namespace (it refuses to run in the host's), it bind-mounts
# copies kept under DIR over the places a boot script writes:
#   DIR/etc   over /etc       (a copy of the host's /etc made on first use, so a
#                              real `useradd` edits the copy, never the host's passwd)
#   DIR/home  over /home
#   DIR/lock  over /run/lock  (/var/lock; with subsys/ as on CentOS)
#   DIR/log   over /var/log   (useradd's lastlog/faillog)
#   DIR/mail  over /var/mail  (useradd's mail spool)
# then execs COMMAND. The mounts vanish with the namespace; DIR keeps the
# state, so a second run with the same DIR is a second boot of the same
# instance. Used by Tests/IntegrationTests/RcLocalTests.swift as
#   ip netns exec NS unshare --mount --propagation private sh netns-sandbox.sh DIR sh rc.local
set -eu

[ $# -ge 2 ] || { echo "usage: netns-sandbox.sh DIR COMMAND [ARG...]" >&2; exit 64; }
dir=$1
shift

# Never in the host's mount namespace: the bind mounts below would hide the host's /etc.
if [ "$(readlink /proc/self/ns/mnt)" = "$(readlink /proc/1/ns/mnt)" ]; then
    echo "netns-sandbox.sh: refusing to run in the host's mount namespace (use unshare --mount --propagation private)" >&2
    exit 1
fi
mount --make-rprivate /

mkdir -p "$dir/home" "$dir/lock/subsys" "$dir/log" "$dir/mail"
if [ ! -e "$dir/etc/passwd" ]; then
    mkdir -p "$dir/etc"
    cp -a /etc/. "$dir/etc/"
fi
mount --bind "$dir/etc" /etc
mount --bind "$dir/home" /home
mount --bind "$dir/lock" "$(readlink -f /var/lock)"
mount --bind "$dir/log" /var/log
mount --bind "$dir/mail" "$(readlink -f /var/mail)"
exec "$@"
