#!/usr/bin/env bash
# What the integration tests need on this machine: OpenSSH (server and client), dropbear, tinysshd (under
# tcpserver), rsync (the upload bench), the login shells the tests give their users, and a Debian 13 root whose OpenSSH 10 sshd the
# tests run (made once per machine with debootstrap, outside the clone). As root, what is missing is
# installed (Debian/Ubuntu apt-get); otherwise this says exactly what to install. Runs before `npm test`
# (the pretest script); .ci/run starts it early in the background too, so a lock makes the second run wait.
set -euo pipefail
exec 9>/tmp/ssh-fleet-prerequisites.lock
flock 9

need=()
have() { command -v "$1" >/dev/null 2>&1 || [ -x "/usr/sbin/$1" ]; }
have sshd || need+=(openssh-server)
for tool in ssh ssh-keygen ssh-agent ssh-add; do have "$tool" || { need+=(openssh-client); break; }; done
have dropbear || need+=(dropbear-bin)
have tinysshd || need+=(tinysshd)
have tcpserver || need+=(ucspi-tcp)
have debootstrap || need+=(debootstrap)
# The upload bench compares with rsync over ssh; the hosts (this machine) need it too.
have rsync || need+=(rsync)
for shell in zsh fish tcsh busybox; do have "$shell" || need+=("$shell"); done
have sudo || need+=(sudo)

# The Debian 13 root of the OpenSSH 10 tests (test/helpers/openssh10.ts reads the same path).
trixie=${SSH_FLEET_TRIXIE_ROOT:-/var/cache/ssh-fleet/trixie}
make_trixie() {
  [ -x "$trixie/usr/sbin/sshd" ] && return 0
  echo "making a Debian 13 root with OpenSSH 10 at $trixie (debootstrap, about 2 minutes)"
  rm -rf "$trixie.tmp"
  mkdir -p "$(dirname "$trixie")"
  debootstrap --variant=minbase --include=openssh-server trixie "$trixie.tmp" http://deb.debian.org/debian >"$trixie.log" 2>&1 ||
    { tail -20 "$trixie.log" >&2; exit 1; }
  mv "$trixie.tmp" "$trixie"
}

if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  if [ ${#need[@]} -gt 0 ]; then
    echo "installing what the tests need: ${need[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
  fi
  make_trixie
  exit 0
fi
[ ${#need[@]} -eq 0 ] && exit 0
# Without root the tests log in as you, and those that need dropbear or extra users are skipped
# (visibly); sshd and the OpenSSH client are needed for the rest.
missing_core=$(printf '%s\n' "${need[@]}" | grep -E '^openssh-(server|client)$' || true)
echo "the integration tests need: ${need[*]}" >&2
echo "install them, e.g.: sudo apt-get install -y ${need[*]}   (or run npm test as root, which does it)" >&2
[ -z "$missing_core" ] || exit 1
