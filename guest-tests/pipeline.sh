#!/bin/sh
# Pipelines of busybox applets give the expected answers; reported as TAP.
echo "TAP version 13"
echo "1..3"
sum=$(seq 1 100 | awk '{ s += $1 } END { print s }')
if [ "$sum" = 5050 ]; then echo "ok 1 - seq | awk sums 1..100"; else echo "not ok 1 - seq | awk sums 1..100"; echo "# got $sum"; fi
first=$(printf 'pear\napple\nfig\n' | sort | head -n 1)
if [ "$first" = apple ]; then echo "ok 2 - sort | head"; else echo "not ok 2 - sort | head"; echo "# got $first"; fi
words=$(echo "a b c d" | tr ' ' '\n' | wc -l)
if [ "$words" -eq 4 ]; then echo "ok 3 - tr | wc"; else echo "not ok 3 - tr | wc"; echo "# got $words"; fi
