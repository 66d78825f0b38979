#!/usr/bin/env bash
# make distrotest: splinterlab on today's Debian stable (13, trixie: FRR 10, Python 3.13, a
# minimal image), on this machine's kernel. Builds a minimal Debian root with debootstrap
# (cached in DISTRO_CACHE between runs), copies this clone into it, enters it with a mount
# namespace of its own (scripts/distro-enter.sh) and runs the README's two commands' quick
# checks there (scripts/distro-inside.sh: make setup, doctor, pingall for every design, a
# quick blast radius, bench recovery); then judges what they wrote
# (experiments/bench/distrocheck.py). Output: results/distrotest/<time>/ (or DISTRO_OUT).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh

release=${DISTRO_RELEASE:-trixie}
cache=${DISTRO_CACHE:-/var/cache/splinterlab}
root=$cache/$release
mirror=${DISTRO_MIRROR:-http://deb.debian.org/debian}
if [ "$(id -u)" != 0 ]; then
    echo "distrotest: it builds a Debian root and namespaces; run 'sudo make distrotest'." >&2
    exit 1
fi
if ! command -v debootstrap >/dev/null; then
    echo "distrotest: installing debootstrap"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends debootstrap \
        >/dev/null
fi
if [ ! -x "$root/usr/bin/apt-get" ]; then
    echo "distrotest: building a minimal Debian $release root in $root (cached)"
    rm -rf "$root.partial"
    mkdir -p "$cache"
    debootstrap --variant=minbase --include=ca-certificates,git,make,sudo "$release" \
        "$root.partial" "$mirror" > "$cache/$release.debootstrap.log" 2>&1
    mv "$root.partial" "$root"
fi
# this machine's extra certificate authorities and pip index, or pip cannot reach its index
cp /usr/local/share/ca-certificates/*.crt "$root/usr/local/share/ca-certificates/" \
    2>/dev/null || true
[ -f /etc/pip.conf ] && cp /etc/pip.conf "$root/etc/pip.conf"

# a copy of this clone as it is (committed or not), without its venv and results
work=$root/root/splinterlab
rm -rf "$work"
mkdir -p "$work"
git ls-files -z --cached --others --exclude-standard | xargs -0 cp --parents -t "$work"
cp -a .git "$work/"

out=${DISTRO_OUT:-results/distrotest/$(date +%Y%m%d-%H%M%S)}
mkdir -p "$out"
out=$(realpath "$out")
echo "distrotest: running the quick checks inside Debian $release; output in $out"
start=$(date +%s)
scripts/distro-enter.sh "$root" bash -c 'update-ca-certificates >/dev/null 2>&1;
    /root/splinterlab/scripts/distro-inside.sh /root/splinterlab/results/distrotest' \
    > "$out/console.txt" 2>&1 || true
cp -a "$work/results/distrotest/." "$out/"
echo "distrotest: Debian $release ran for $(( $(date +%s) - start )) s"
.venv/bin/python -m experiments.bench.distrocheck "$out"
