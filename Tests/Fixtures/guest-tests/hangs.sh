#!/bin/sh
# Never ends by itself: its suite's time limit must kill it.
echo "waiting forever"
while :; do sleep 1; done
