#!/usr/bin/env bash
# Runs inside the VM of `make vmtest` (Debian's stock kernel: netem present). Each step's
# output goes to a file of OUT, its exit status and duration to OUT/steps.txt; the host then
# judges them (experiments/bench/vmcheck.py). Steps never stop the sequence: every one is reported.
set -u
out=$1
cd "$(dirname "$0")/.."
export PATH="$PWD/.venv/bin:/usr/sbin:/usr/bin:/sbin:/bin"
: > "$out/steps.txt"

source scripts/steps.sh

step doctor splinterlab doctor
# precise-timing assertions hold on real hardware, not under TCG: fidelity checks delays here
step tests python -m pytest -q -p no:cacheprovider -m "not timing" tests/test_shaping.py \
    tests/test_network.py tests/test_fidelity.py tests/test_delaypath.py
step fidelity splinterlab fidelity --backend netem --out "$out/results" --name netem
step experiment splinterlab run blast-radius --topo "line,n=2" --backend netem --out "$out/results"
splinterlab clean > /dev/null 2>&1
