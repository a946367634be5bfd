#!/usr/bin/env bash
# Scripts/bootstrap against a package mirror having a bad moment (issue #20), without the
# network and without touching this machine's apt set-up.
#
# Each case runs bootstrap with APT_CONFIG pointing at a sandbox of its own: its sources are
# local `file:` repositories built here (one with a Packages file that does not match its
# Release file, as during a mirror sync), and its package lists and apt cache live under the
# sandbox too. So every apt-get that bootstrap runs reads and writes only under a temp dir,
# removed on exit; /etc/apt and /var/lib/apt/lists are never touched and need no refresh
# afterwards. What is installed (dpkg's status) is the machine's own, which is what
# bootstrap checks first: run this after Scripts/bootstrap (Scripts/test does).
# A stub apt-get on each sandbox's PATH records every call, then runs the real one.
#
# Needs root (apt-get update and install do). Prints a line per check and then
# "N passed, N failed"; exits non-zero when any check failed. About 10 s: the cases run side
# by side, and the slowest waits out bootstrap's retries (2 s + 5 s).
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)

if [ "$(id -u)" != 0 ]; then
  if [ "${CI:-}" = true ]; then
    echo "FAIL: needs root"
    echo "0 passed, 1 failed"
    exit 1
  fi
  echo "SKIP: needs root"
  exit 0
fi

t=$(mktemp -d)
trap 'rm -rf "$t"' EXIT
chmod 755 "$t" # apt downloads as the _apt user, who must be able to read the repositories

# release DIR FILE...: a Release file listing FILE... with their sizes and SHA-256 sums.
release() {
  local dir=$1 f
  shift
  {
    echo "Date: $(date -Ru)"
    echo "SHA256:"
    for f; do printf ' %s %s %s\n' "$(sha256sum <"$dir/$f" | cut -d' ' -f1)" "$(stat -c %s "$dir/$f")" "$f"; done
  } >"$dir/Release"
}

# The good repository: well-formed indexes whose files are missing, as when a mirror has
# already dropped the versions its lists still name. It offers the probe kernel's
# metapackage and kernel and a busybox source package.
zero=0000000000000000000000000000000000000000000000000000000000000000
good=$t/repo/good
mkdir -p "$good"
cat >"$good/Packages" <<EOF
Package: linux-image-cloud-amd64
Version: 6.1.99-1
Architecture: amd64
Depends: linux-image-6.1.0-99-cloud-amd64 (= 6.1.99-1)
Filename: ./linux-image-cloud-amd64_6.1.99-1_amd64.deb
Size: 1000
SHA256: $zero
Description: test metapackage, never downloadable

Package: linux-image-6.1.0-99-cloud-amd64
Version: 6.1.99-1
Architecture: amd64
Filename: ./linux-image-6.1.0-99-cloud-amd64_6.1.99-1_amd64.deb
Size: 1000
SHA256: $zero
Description: test kernel, never downloadable

EOF
cat >"$good/Sources" <<EOF
Package: busybox
Binary: busybox
Version: 1:1.99.0-1
Architecture: any
Format: 3.0 (quilt)
Directory: .
Checksums-Sha256:
 $zero 1000 busybox_1.99.0-1.dsc
 $zero 1000 busybox_1.99.0.orig.tar.xz

EOF
release "$good" Packages Sources

# The bad repository: its Packages file grew after its Release file was written.
bad=$t/repo/bad
mkdir -p "$bad"
printf 'Package: kmatrix-test-dummy\nVersion: 1\nArchitecture: all\n\n' >"$bad/Packages"
release "$bad" Packages
printf 'Package: kmatrix-test-dummy2\nVersion: 1\nArchitecture: all\n\n' >>"$bad/Packages"

# sandbox NAME TYPES:REPO...: apt configuration, sources, lists and cache for one case, a
# bin directory with the apt-get stub (and a swift stub, which is all bootstrap asks of
# swift), and a kmatrix cache that already has the busybox source and the probe kernel.
sandbox() {
  local s=$t/$1 entry
  shift
  mkdir -p "$s"/{sources,lists/partial,apt/archives/partial,bin,cache/sources,cache/probe}
  cat >"$s/apt.conf" <<EOF
Dir::Etc::SourceList "/dev/null";
Dir::Etc::SourceParts "$s/sources";
Dir::State::Lists "$s/lists";
Dir::Cache "$s/apt";
EOF
  for entry; do
    printf 'Types: %s\nURIs: file:%s\nSuites: ./\nTrusted: yes\n\n' "${entry%%:*}" "$t/repo/${entry#*:}"
  done >"$s/sources/test.sources"
  printf '#!/bin/sh\necho "$*" >>"%s/calls"\nexec /usr/bin/apt-get "$@"\n' "$s" >"$s/bin/apt-get"
  printf '#!/bin/sh\nexit 0\n' >"$s/bin/swift"
  chmod +x "$s/bin/apt-get" "$s/bin/swift"
  echo stand-in >"$s/cache/sources/busybox_0.orig.tar.xz"
  echo stand-in >"$s/cache/probe/vmlinuz"
}

# start NAME [VAR=VALUE...] [-- BOOTSTRAP-ARGUMENTS...]: bootstrap in sandbox NAME, in the
# background; its output (both streams) goes to NAME/out and its exit status to NAME/rc.
start() {
  local s=$t/$1 vars=()
  shift
  while [ $# -gt 0 ] && [ "$1" != -- ]; do vars+=("$1"); shift; done
  [ $# -eq 0 ] || shift
  (
    rc=0
    env -u KMATRIX_BOOTSTRAP_FORCE_UPDATE -u KMATRIX_BOOTSTRAP_EXTRA_PACKAGES "${vars[@]}" \
      APT_CONFIG="$s/apt.conf" KMATRIX_CACHE="$s/cache" PATH="$s/bin:$PATH" \
      "$root/Scripts/bootstrap" "$@" >"$s/out" 2>&1 || rc=$?
    echo "$rc" >"$s/rc"
  ) &
}

passed=0 failed=0
declare -A shown=()
# check NAME DESCRIPTION COMMAND...: one verdict; on a case's first failure, what bootstrap
# printed there.
check() {
  local name=$1 what=$2
  shift 2
  if "$@"; then
    passed=$((passed + 1))
    echo "ok: $name: $what"
  else
    failed=$((failed + 1))
    echo "FAIL: $name: $what"
    [ -z "${shown[$name]:-}" ] || return 0
    shown[$name]=1
    echo "  exit status $(cat "$t/$name/rc"), output:"
    sed 's/^/  | /' "$t/$name/out"
  fi
}
rc_is() { [ "$(cat "$t/$1/rc")" = "$2" ]; }
out_lines() { [ "$(wc -l <"$t/$1/out")" = "$2" ]; }
out_has() { grep -qF -- "$2" "$t/$1/out"; }
calls() { if [ -e "$t/$1/calls" ]; then grep -c -- "$2" "$t/$1/calls" || true; else echo 0; fi; }
calls_are() { [ "$(calls "$1" "$2")" = "$3" ]; }

SECONDS=0
# A ready machine: nothing to do, so no apt command and not a word.
sandbox ready deb:good
start ready
# One index fails, forced through apt-get update: three tries, one warning, exit 0.
sandbox bad-index deb:good deb:bad
start bad-index KMATRIX_BOOTSTRAP_FORCE_UPDATE=1
# A needed package that does not exist anywhere: exit 3, naming it, without retries.
sandbox no-such-package deb:good
start no-such-package KMATRIX_BOOTSTRAP_EXTRA_PACKAGES=kmatrix-no-such-package
# The busybox source does not download: three tries, then exit 3 naming the command.
sandbox no-busybox-source deb:good deb-src:good
rm "$t/no-busybox-source/cache/sources/busybox_0.orig.tar.xz"
start no-busybox-source
# The probe kernel does not download (x86_64 only): three tries, a notice naming the
# command, exit 0.
probe=
if [ "$(uname -m)" = x86_64 ]; then
  probe=1
  sandbox no-probe-kernel deb:good
  rm "$t/no-probe-kernel/cache/probe/vmlinuz"
  start no-probe-kernel
fi
wait
# A matrix given with --matrix adds the packages its sources name (a second kernel's
# linux-source): here one that does not exist, so bootstrap must try to install it. Alone:
# apt-get install takes dpkg's lock, which no-such-package's install also takes.
sandbox matrix-package deb:good
printf '{"sources": {"kernel": {"6.12": {"paths": ["/x"], "debianPackage": "kmatrix-matrix-only-source"}}}}\n' >"$t/matrix-package/m.json"
start matrix-package -- --matrix "$t/matrix-package/m.json"
wait
echo "bootstrap ran in 6 sandboxes in ${SECONDS} s"

check ready "exit 0" rc_is ready 0
check ready "prints nothing" out_lines ready 0
check ready "runs no apt-get" calls_are ready . 0

check bad-index "exit 0" rc_is bad-index 0
check bad-index "tries apt-get update 3 times" calls_are bad-index '^update' 3
check bad-index "prints exactly one line" out_lines bad-index 1
check bad-index "a warning naming the bad index" out_has bad-index "bootstrap: warning: apt-get update (3 tries): Failed to fetch file:$bad/./Packages"

check no-such-package "exit 3" rc_is no-such-package 3
check no-such-package "names the package and apt's reason" out_has no-such-package \
  "bootstrap: cannot install kmatrix-no-such-package: Unable to locate package kmatrix-no-such-package"
check no-such-package "tries apt-get install once" calls_are no-such-package '^install' 1

check matrix-package "exit 3" rc_is matrix-package 3
check matrix-package "installs the package the matrix names" out_has matrix-package \
  "bootstrap: cannot install kmatrix-matrix-only-source: Unable to locate package kmatrix-matrix-only-source"

check no-busybox-source "exit 3" rc_is no-busybox-source 3
check no-busybox-source "tries apt-get source 3 times" calls_are no-busybox-source '^source' 3
check no-busybox-source "names the source, apt's reason and the command" out_has no-busybox-source \
  "bootstrap: cannot fetch the busybox source: Failed to fetch file:$good/./busybox_1.99.0"
check no-busybox-source "... and the command" out_has no-busybox-source \
  "; by hand: cd $t/no-busybox-source/cache/sources && apt-get source --download-only busybox"
check no-busybox-source "leaves no partial download" \
  test -z "$(ls -A "$t/no-busybox-source/cache/sources")"

if [ -n "$probe" ]; then
  check no-probe-kernel "exit 0" rc_is no-probe-kernel 0
  check no-probe-kernel "tries apt-get download 3 times" calls_are no-probe-kernel '^download' 3
  check no-probe-kernel "a notice naming the kernel and the command" out_has no-probe-kernel \
    "bootstrap: could not fetch a KVM probe kernel (linux-image-6.1.0-99-cloud-amd64): Failed to fetch"
  check no-probe-kernel "... and the command" out_has no-probe-kernel \
    "apt-get download linux-image-6.1.0-99-cloud-amd64 &&"
fi

echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
