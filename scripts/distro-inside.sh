#!/usr/bin/env bash
# Runs inside the Debian root of `make distrotest`, as a new user would: the README's set-up,
# doctor, every design's pingall on isp, a quick blast radius and the recovery benchmark.
# Each step's output goes to a file of OUT, its exit status and duration to OUT/steps.txt;
# the host then judges them (experiments/bench/distrocheck.py). Steps never stop the
# sequence: every one is reported.
set -u
out=$1
cd "$(dirname "$0")/.."
mkdir -p "$out"
: > "$out/steps.txt"

source scripts/steps.sh

step setup make setup
step doctor .venv/bin/splinterlab doctor
for arch in $(.venv/bin/splinterlab designs --names); do
    step "pingall-$arch" .venv/bin/splinterlab up --topo isp --arch "$arch" --test pingall
done
step experiment .venv/bin/splinterlab run blast-radius --topo isp --out "$out/results" \
    --name distro
step recovery .venv/bin/splinterlab bench recovery --topo isp --out "$out/results" \
    --name distro
.venv/bin/splinterlab clean > /dev/null 2>&1
