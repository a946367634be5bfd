#!/bin/sh
# /proc/cpuinfo describes the architecture uname reports (the kernel booted is the one built for it).
arch=$(uname -m)
case "$arch" in
    x86_64)  pattern='^flags.* lm( |$)' ;;
    armv7l)  pattern='^(model name|Processor).*ARMv7' ;;
    aarch64) pattern='^CPU architecture: *8' ;;
    riscv64) pattern='^isa.*rv64' ;;
    *) echo "no rule for architecture $arch"; exit 1 ;;
esac
if grep -Eq "$pattern" /proc/cpuinfo; then
    echo "$arch: /proc/cpuinfo matches $pattern"
else
    echo "$arch: /proc/cpuinfo does not match $pattern:"
    cat /proc/cpuinfo
    exit 1
fi
