#!/bin/sh
# Deliberately fails: the cell that runs it must fail as tests-failed, naming it with this output.
echo "checking that 2 + 2 is 5"
echo "expected 5, got $((2 + 2))"
exit 3
