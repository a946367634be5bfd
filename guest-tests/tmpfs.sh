#!/bin/sh
# A tmpfs mounts, holds a file, and unmounts.
set -e
dir=/tmp/kmatrix-tmpfs
mkdir -p "$dir"
mount -t tmpfs -o size=1m kmatrix-tmpfs "$dir"
grep -q " $dir tmpfs " /proc/mounts
echo hello > "$dir/file"
[ "$(cat "$dir/file")" = hello ]
umount "$dir"
[ ! -e "$dir/file" ]
echo "tmpfs mounted, written, read and unmounted"
