// /etc/rc.d/rc.local: installs the instance's launch key for ec2-user at first boot.

public enum RcLocal {
    public static let path = "/etc/rc.d/rc.local"
    public static let mode: UInt16 = 0o755
    /// CentOS 6's initscripts ship `/etc/rc.local -> rc.d/rc.local`; the install keeps (or restores) it.
    public static let linkPath = "/etc/rc.local"
    public static let linkTarget = "rc.d/rc.local"

    /// The script, byte for byte. A raw string literal with nothing interpolated:
    /// every `$` in it is the shell's, expanded at boot, never at build time
    /// (the original's unquoted heredoc expanded `$?` and the retry counter
    /// when the image was built). The golden test compares it byte for byte.
    ///
    /// What it does at every boot (each run ends within about a minute):
    /// - `touch /var/lock/subsys/local`, as CentOS's own rc.local;
    /// - creates ec2-user if missing (`useradd -m`) and `~/.ssh` (0700, ec2-user's);
    /// - when `~/.ssh/authorized_keys` does not exist yet (first boot): gets an
    ///   IMDSv2 token (PUT, TTL 21600) and the launch key with that token (never a
    ///   request without one), retrying connection errors, timeouts, 429 and 5xx
    ///   until about 55 s have passed (each call at most 5 s), fetching a new token
    ///   once on 401; a 404 (instance launched without a key) ends quietly; the key
    ///   must be one line that looks like an OpenSSH public key; it is written to a
    ///   temporary file in `~/.ssh` (0600, ec2-user's) and renamed into place;
    ///   `restorecon` runs when present.
    /// - It downloads and runs no software.
    ///
    /// Portable sh (CentOS 6's bash 4.1 as /bin/sh, dash, busybox sh); external
    /// commands: touch, id, useradd, mkdir, chmod, chown, date, sleep, curl, grep,
    /// mktemp, mv, rm, sync, and restorecon when present.
    public static let script = #"""
        #!/bin/sh
        #
        # This script will be executed *after* all the other init scripts.
        # You can put your own initialization stuff in here if you don't
        # want to do the full Sys V style init stuff.

        touch /var/lock/subsys/local

        # centos6-ami: install the launch key of this instance for ec2-user, from
        # the instance metadata service (IMDSv2). Only while
        # ~ec2-user/.ssh/authorized_keys does not exist: a key is installed once,
        # never duplicated at later boots. Gives up after about a minute. Downloads
        # and runs no software.
        centos6_ami_launch_key() (
            PATH=/sbin:/usr/sbin:/bin:/usr/bin
            export PATH
            user=ec2-user
            imds=http://169.254.169.254
            nl='
        '
            say() { echo "rc.local: $*" >&2; }

            if ! id "$user" >/dev/null 2>&1; then
                useradd -m "$user" || { say "cannot create user $user"; exit 1; }
            fi
            group=$(id -gn "$user") || exit 1
            home=~ec2-user
            case $home in
            /*) ;;
            *) say "user $user has no home directory"; exit 1 ;;
            esac
            ssh=$home/.ssh
            keys=$ssh/authorized_keys
            if [ ! -d "$ssh" ]; then
                mkdir -p "$ssh" || exit 1
            fi
            chmod 700 "$ssh" && chown "$user:$group" "$ssh" || exit 1
            if [ -e "$keys" ] || [ -L "$keys" ]; then
                exit 0
            fi

            start=$(date +%s)
            calls=0
            # call METHOD PATH HEADER: one request, at most 5 s. Sets body (the
            # answer, without curl's status line) and code (the HTTP status, 000
            # when there was no answer) and result: ok (200), retry (no answer,
            # timeout, cut short, 429 or 5xx) or http (any other status). Ends the
            # run when the time budget (55 s, 30 calls) is spent.
            # curl -f: an HTTP error is an error, its body never becomes the key
            # or the token; -w still prints the status after the failure (curl
            # has always written -w output whatever the result), which tells a
            # 401 or 404 from a 5xx.
            call() {
                calls=$((calls + 1))
                if [ $(($(date +%s) - start)) -ge 55 ] || [ "$calls" -gt 30 ]; then
                    say "instance metadata service unavailable; gave up after $((calls - 1)) requests"
                    exit 1
                fi
                out=$(curl -f -sS --connect-timeout 2 --max-time 5 -X "$1" -H "$3" -w "$nl%{http_code}" "$imds$2")
                status=$?
                code=${out##*"$nl"}
                body=${out%"$nl"*}
                case $status:$code in
                0:200) result=ok ;;
                22:429 | 22:5??) result=retry ;;
                22:* | 0:*) result=http ;;
                *) result=retry ;;
                esac
            }
            pause() { sleep 2; }

            token=
            renewed=no
            while :; do
                if [ -z "$token" ]; then
                    call PUT /latest/api/token "X-aws-ec2-metadata-token-ttl-seconds: 21600"
                    case $result in
                    ok)
                        token=${body%"$nl"}
                        if [ -z "$token" ]; then
                            say "the token request answered an empty token"
                            exit 1
                        fi ;;
                    retry) pause ;;
                    *) say "the token request answered HTTP $code"; exit 1 ;;
                    esac
                    continue
                fi
                call GET /latest/meta-data/public-keys/0/openssh-key "X-aws-ec2-metadata-token: $token"
                case $result:$code in
                ok:*) break ;;
                retry:*) pause ;;
                http:404)
                    say "no launch key for this instance; nothing to install"
                    exit 0 ;;
                http:401)
                    if [ "$renewed" = yes ]; then
                        say "token refused twice"
                        exit 1
                    fi
                    renewed=yes
                    token= ;;
                *) say "the key request answered HTTP $code"; exit 1 ;;
                esac
            done

            key=${body%"$nl"}
            case $key in
            '' | *"$nl"*) say "the launch key is not one line; not installed"; exit 1 ;;
            esac
            if ! printf '%s\n' "$key" | grep -Eq '^(ssh-(rsa|dss|ed25519)|ecdsa-sha2-nistp(256|384|521)) [A-Za-z0-9+/=]+( .*)?$'; then
                say "the launch key does not look like an OpenSSH public key; not installed"
                exit 1
            fi
            tmp=$(mktemp "$ssh/.authorized_keys.XXXXXX") || exit 1
            if printf '%s\n' "$key" >"$tmp" && chmod 600 "$tmp" && chown "$user:$group" "$tmp" && mv -f "$tmp" "$keys"; then
                :
            else
                rm -f "$tmp"
                say "cannot write $keys"
                exit 1
            fi
            if command -v restorecon >/dev/null 2>&1; then
                restorecon -R "$ssh"
            fi
            # On disk before anything else happens: a first boot may be cut short.
            sync
            say "installed the launch key for $user"
        )
        centos6_ami_launch_key

        """#
}
