#!/bin/sh
# /proc/cpuinfo describes the architecture uname reports (the kernel booted is the one built for it).
arch=$(uname -m)
case "$arch" in
    x86_64)  pattern='^flags.* lm( |$)' ;;
    armv7l)  pattern='^(model name|Processor).*ARMv7' ;;
    aarch64) pattern='^CPU architecture: *8' ;;
    riscv64) pattern='^isa.*rv64' ;;
    i686)    pattern='^flags.* fpu( |$)' ;;
    armv5*)  pattern='^(model name|Processor).*\(v5l\)' ;;
    mips)    pattern='^cpu model.*MIPS' ;;
    ppc64le) pattern='^cpu.*POWER' ;;
    s390x)   pattern='^vendor_id.*IBM/S390' ;;
    *) echo "no rule for architecture $arch"; exit 1 ;;
esac
if grep -Eq "$pattern" /proc/cpuinfo; then
    echo "$arch: /proc/cpuinfo matches $pattern"
else
    echo "$arch: /proc/cpuinfo does not match $pattern:"
    cat /proc/cpuinfo
    exit 1
fi
