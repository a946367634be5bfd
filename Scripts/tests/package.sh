#!/usr/bin/env bash
# The Debian package as a user gets it: Scripts/package builds it, lintian checks it (no
# errors; warnings are printed), apt-get installs it on this machine, and from a folder
# outside the clone the installed kmatrix lists and checks the shipped targets, `man -w
# kmatrix` finds its page and bash completes `kmatrix run --t` to --target. The package
# is purged again at the end unless it was installed before. Needs root (apt-get; sudo
# otherwise). Scripts/test runs it after the end-to-end runs.
#
# Prints `package: <size> <file>` and `lintian: <errors> errors, <warnings> warnings`.
set -euo pipefail
cd "$(dirname "$0")/../.."
repo=$PWD
fail() { printf 'package test: FAIL: %s\n' "$*" >&2; exit 1; }
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }
apt_install() { as_root env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 install -y -q "$@"; }

work=$(mktemp -d)
installed_before=$(dpkg-query -W -f='${Status}' kmatrix 2>/dev/null | grep -c 'install ok installed' || true)
cleanup() {
  if [ "$installed_before" = 0 ] && dpkg-query -W -f='${Status}' kmatrix 2>/dev/null | grep -q 'install ok installed'; then
    as_root env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 purge -y -q kmatrix > /dev/null || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT

echo "== package: build"
Scripts/package --output "$work/out" | tee "$work/package.log"
deb=$(tail -n1 "$work/package.log")
[ -f "$deb" ] || fail "Scripts/package printed no package ($deb)"
size=$(stat -c %s "$deb")
echo "package: $(numfmt --to=iec-i --suffix=B "$size") ($size bytes) $(basename "$deb")"
dpkg-deb --info "$deb" | sed -n '/^ Package:/,$p'

echo "== package: lintian"
command -v lintian > /dev/null || apt_install lintian > /dev/null
lintian --no-tag-display-limit "$deb" > "$work/lintian.txt" 2>&1 || true
errors=$(grep -c '^E: ' "$work/lintian.txt" || true)
warnings=$(grep -c '^W: ' "$work/lintian.txt" || true)
cat "$work/lintian.txt"
echo "lintian: $errors errors, $warnings warnings"
[ "$errors" = 0 ] || fail "lintian found $errors errors (above)"

echo "== package: install"
(cd "$(dirname "$deb")" && apt_install --reinstall "./$(basename "$deb")") > "$work/apt.log" 2>&1 \
  || { cat "$work/apt.log"; fail "apt-get install ./$(basename "$deb") failed"; }
[ -x /usr/bin/kmatrix ] || fail "/usr/bin/kmatrix is not installed"
if ldd /usr/bin/kmatrix | grep -q /opt/swift; then fail "/usr/bin/kmatrix links /opt/swift"; fi

# Outside the clone, with nothing pointing back into it, and a cache of its own.
outside=$work/elsewhere
mkdir -p "$outside"
cd "$outside"
run_installed() { env -u KMATRIX_DATA -u KMATRIX_CACHE PATH=/usr/bin:/bin:/usr/sbin:/sbin HOME="$work/home" /usr/bin/kmatrix "$@"; }
targets=$(python3 -c 'import glob, json, sys; print(" ".join(sorted(json.load(open(p))["name"] for p in glob.glob(sys.argv[1] + "/Targets/*.json"))))' "$repo")

echo "== package: kmatrix list (in $outside)"
run_installed list > "$work/list.txt" || { cat "$work/list.txt"; fail "kmatrix list failed"; }
cat "$work/list.txt"
for target in $targets; do
  grep -q "^$target .*shipped /usr/share/kmatrix/Targets/$target.json" "$work/list.txt" \
    || fail "kmatrix list does not show $target from /usr/share/kmatrix"
done

# doctor checks the default matrix's cells: it must name each of their targets.
matrix_targets=$(python3 -c 'import json, sys; t = [c["target"] for c in json.load(open(sys.argv[1]))["cells"]]; print(" ".join(sorted({n for x in t for n in (x if isinstance(x, list) else [x])})))' "$repo/matrix.json")
echo "== package: kmatrix doctor (it may find things missing; it must run and name every target of the default matrix)"
status=0
run_installed doctor --cache "$work/cache" > "$work/doctor.txt" 2>&1 || status=$?
cat "$work/doctor.txt"
case $status in 0|3) ;; *) fail "kmatrix doctor exited $status" ;; esac
for target in $matrix_targets; do grep -q "$target" "$work/doctor.txt" || fail "kmatrix doctor does not name $target"; done

echo "== package: man -w kmatrix"
command -v man > /dev/null || apt_install man-db > /dev/null
page=$(man -w kmatrix) || fail "man -w kmatrix finds no page"
echo "$page"
[ "$page" = /usr/share/man/man1/kmatrix.1.gz ] || fail "man -w kmatrix gives $page, not the package's page"

echo "== package: bash completion of 'kmatrix run --t'"
replies=$(bash --norc --noprofile -c '
  source /usr/share/bash-completion/completions/kmatrix
  function=$(complete -p kmatrix | sed -n "s/.*-F \([^ ]*\) .*/\1/p")
  [ -n "$function" ] || { echo "no completion function for kmatrix" >&2; exit 1; }
  COMP_WORDS=(kmatrix run --t); COMP_CWORD=2; COMP_LINE="kmatrix run --t"; COMP_POINT=${#COMP_LINE}
  "$function" kmatrix --t run
  printf "%s\n" "${COMPREPLY[@]}"') || fail "the bash completion function failed"
echo "$replies" | tr '\n' ' '; echo
printf '%s\n' "$replies" | grep -qx -- '--target' || fail "completing 'kmatrix run --t' does not offer --target"
echo "== package: passed"
