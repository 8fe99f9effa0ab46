#!/usr/bin/env bash
# What the integration tests need on this machine: OpenSSH (server and client), dropbear, and the login
# shells the tests give their users. As root, what is missing is installed (Debian/Ubuntu apt-get);
# otherwise this says exactly what to install. Runs before `npm test` (the pretest script).
set -euo pipefail

need=()
have() { command -v "$1" >/dev/null 2>&1 || [ -x "/usr/sbin/$1" ]; }
have sshd || need+=(openssh-server)
for tool in ssh ssh-keygen ssh-agent ssh-add; do have "$tool" || { need+=(openssh-client); break; }; done
have dropbear || need+=(dropbear-bin)
for shell in zsh fish tcsh busybox; do have "$shell" || need+=("$shell"); done
have sudo || need+=(sudo)
[ ${#need[@]} -eq 0 ] && exit 0

if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "installing what the tests need: ${need[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
  exit 0
fi
# Without root the tests log in as you, and those that need dropbear or extra users are skipped
# (visibly); sshd and the OpenSSH client are needed for the rest.
missing_core=$(printf '%s\n' "${need[@]}" | grep -E '^openssh-(server|client)$' || true)
echo "the integration tests need: ${need[*]}" >&2
echo "install them, e.g.: sudo apt-get install -y ${need[*]}   (or run npm test as root, which does it)" >&2
[ -z "$missing_core" ] || exit 1
