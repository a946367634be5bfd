#!/usr/bin/env bash
# The default matrix done by hand, the way the seed posts do it: per architecture, one
# after another, unpack-configure-build the kernel (tinyconfig + a fragment merged with
# the kernel's merge_config.sh), build a static busybox, lay out the rootfs skeleton,
# pack it with `find . | cpio -o -H newc | gzip`, and boot it in QEMU until the marker.
# No cache, no ccache, no parallelism beyond make -jN. Scripts/bench runs it as the
# baseline kmatrix is compared against; it can be run by itself too.
#
# usage: Benchmarks/baseline.sh WORKDIR FRAGMENTDIR [JOBS]
#   FRAGMENTDIR holds <target>.config, the options kmatrix would request for that target
#   (Scripts/bench writes them from `kmatrix plan --json`).
#   MODE=cold (default) unpacks and configures; MODE=rerun only runs make, make install,
#   the packing and the boot again on the trees a cold run left (the hand-made "no-op
#   rerun"); MODE=reconfigure also configures the kernel again from FRAGMENTDIR (the
#   hand-made one-cell edit, with TARGETS=<that target>). TARGETS="x86_64-pc ..." picks
#   targets; KERNEL_TARBALL, BUSYBOX_TARBALL name the sources.
# Writes WORKDIR/phases.tsv (target, phase, seconds) and exits 1 if any boot failed.
set -euo pipefail

work=${1:?usage: baseline.sh WORKDIR FRAGMENTDIR [JOBS]}
frags=${2:?usage: baseline.sh WORKDIR FRAGMENTDIR [JOBS]}
jobs=${3:-$(nproc)}
mode=${MODE:-cold}
targets=${TARGETS:-"x86_64-pc arm-vexpress-a9 arm64-virt riscv64-virt"}
kernel_tarball=${KERNEL_TARBALL:-/usr/src/linux-source-6.1.tar.xz}
busybox_tarball=${BUSYBOX_TARBALL:-$HOME/.cache/kmatrix/sources/busybox_1.35.0.orig.tar.bz2}
marker=KMATRIX-BOOT-OK
export LC_ALL=C CCACHE_DISABLE=1

mkdir -p "$work"
work=$(cd "$work" && pwd)
frags=$(cd "$frags" && pwd)
phases=$work/phases.tsv
case $mode in
    cold) : > "$phases" ;;
    rerun | reconfigure) [ -d "$work/src/linux" ] || { echo "MODE=$mode needs the trees of a cold run in $work" >&2; exit 2; } ;;
    *) echo "MODE=$mode: cold, rerun or reconfigure" >&2; exit 2 ;;
esac

now() { date +%s.%N; }
# phase TARGET NAME COMMAND...: runs COMMAND, appends its wall time to phases.tsv.
phase() {
    local target=$1 name=$2 start end
    shift 2
    start=$(now)
    "$@"
    end=$(now)
    printf '%s\t%s\t%s\n' "$target" "$name" "$(echo "$end - $start" | bc)" >> "$phases"
}
quiet() { # output to the step log, the last lines on failure
    local log=$1
    shift
    if ! "$@" >> "$log" 2>&1; then
        echo "FAILED: $* (log $log)" >&2
        tail -n 20 "$log" >&2
        return 1
    fi
}

ksrc=$work/src/linux
bsrc=$work/src/busybox
if [ "$mode" = cold ]; then
    rm -rf "$work/src" "$work/build"
    mkdir -p "$ksrc" "$bsrc"
    phase all unpack-kernel tar -xf "$kernel_tarball" -C "$ksrc" --strip-components=1
    phase all unpack-busybox tar -xf "$busybox_tarball" -C "$bsrc" --strip-components=1
fi

init_script='#!/bin/sh
export PATH=/bin:/sbin:/usr/bin:/usr/sbin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
grep -q " /dev " /proc/mounts || mount -t devtmpfs devtmpfs /dev 2>/dev/null
echo "'$marker' arch=$(uname -m) release=$(uname -r) uptime=$(cut -d" " -f1 /proc/uptime)"
sync
reboot -f
exit 1
'

skeleton() { # seed 003's rootfs skeleton around a busybox install
    local root=$1
    mkdir -p "$root"/{bin,sbin,usr/bin,usr/sbin,etc/init.d,dev,proc,sys,tmp,root,home,mnt,lib,run,var/log}
    chmod 1777 "$root/tmp"
    [ -e "$root/dev/console" ] || mknod -m 600 "$root/dev/console" c 5 1
    [ -e "$root/dev/null" ] || mknod -m 666 "$root/dev/null" c 1 3
    printf '%s' "$init_script" > "$root/init"
    chmod 755 "$root/init"
    echo 'root::0:0:root:/root:/bin/sh' > "$root/etc/passwd"
}

pack() { # root output
    (cd "$1" && find . | cpio -o -H newc --quiet | gzip) > "$2"
}

boot() { # log qemu-args...
    local log=$1
    shift
    timeout 120 "$@" < /dev/null > "$log" 2>&1 || true
    grep -q "^$marker" "$log"
}

failed=0
for target in $targets; do
    dtb=
    qemu_extra=()
    case $target in
        x86_64-pc) arch=x86_64; cross=x86_64-linux-gnu-; make_targets=bzImage; image=arch/x86/boot/bzImage
            qemu=(qemu-system-x86_64 -M pc); console=ttyS0 ;;
        arm-vexpress-a9) arch=arm; cross=arm-linux-gnueabihf-; make_targets="zImage vexpress-v2p-ca9.dtb"
            image=arch/arm/boot/zImage; dtb=arch/arm/boot/dts/vexpress-v2p-ca9.dtb
            qemu=(qemu-system-arm -M vexpress-a9); qemu_extra=(-audiodev none,id=snd0); console=ttyAMA0 ;;
        arm64-virt) arch=arm64; cross=aarch64-linux-gnu-; make_targets=Image; image=arch/arm64/boot/Image
            qemu=(qemu-system-aarch64 -M virt -cpu cortex-a57); console=ttyAMA0 ;;
        riscv64-virt) arch=riscv; cross=riscv64-linux-gnu-; make_targets=Image; image=arch/riscv/boot/Image
            qemu=(qemu-system-riscv64 -M virt); qemu_extra=(-bios default); console=ttyS0 ;;
        *) echo "unknown target $target" >&2; exit 2 ;;
    esac
    kb=$work/build/$target/kernel
    bb=$work/build/$target/busybox
    root=$work/build/$target/rootfs
    logs=$work/build/$target/logs
    mkdir -p "$kb" "$bb" "$logs"
    kmake=(make -C "$ksrc" O="$kb" ARCH=$arch CROSS_COMPILE=$cross)
    bmake=(make -C "$bsrc" O="$bb" CROSS_COMPILE=$cross)
    echo "== $target ($mode)"

    if [ "$mode" != rerun ] || [ ! -f "$kb/.config" ]; then
        [ -f "$frags/$target.config" ] || { echo "no fragment $frags/$target.config" >&2; exit 2; }
        kconfig() {
            "${kmake[@]}" tinyconfig &&
            (cd "$kb" && ARCH=$arch "$ksrc/scripts/kconfig/merge_config.sh" -m -O "$kb" "$kb/.config" "$frags/$target.config") &&
            "${kmake[@]}" olddefconfig
        }
        phase "$target" kernel-config quiet "$logs/kernel.log" kconfig
    fi
    phase "$target" kernel-build quiet "$logs/kernel.log" "${kmake[@]}" -j"$jobs" $make_targets

    if [ "$mode" = cold ] || [ ! -f "$bb/.config" ]; then
        bconfig() {
            "${bmake[@]}" defconfig &&
            sed -i -e 's/^# CONFIG_STATIC is not set/CONFIG_STATIC=y/' -e 's/^CONFIG_TC=y/# CONFIG_TC is not set/' "$bb/.config" &&
            { yes '' || true; } | "${bmake[@]}" oldconfig
        }
        phase "$target" busybox-config quiet "$logs/busybox.log" bconfig
    fi
    phase "$target" busybox-build quiet "$logs/busybox.log" "${bmake[@]}" -j"$jobs"
    phase "$target" busybox-install quiet "$logs/busybox.log" "${bmake[@]}" CONFIG_PREFIX="$root" install

    phase "$target" rootfs-skeleton skeleton "$root"
    phase "$target" pack pack "$root" "$work/build/$target/initramfs.cpio.gz"

    args=("${qemu[@]}" -accel tcg -m 256 -smp 1 -nodefaults -nographic -serial stdio -no-reboot "${qemu_extra[@]}"
          -kernel "$kb/$image")
    [ -n "$dtb" ] && args+=(-dtb "$kb/$dtb")
    args+=(-initrd "$work/build/$target/initramfs.cpio.gz" -append "console=$console panic=-1 rdinit=/init")
    if phase "$target" boot boot "$logs/boot.log" "${args[@]}"; then
        echo "   $(grep -m1 "^$marker" "$logs/boot.log" | tr -d '\r')"
    else
        echo "   BOOT FAILED: no $marker (log $logs/boot.log)" >&2
        tail -n 5 "$logs/boot.log" >&2
        failed=1
    fi
done
exit $failed
