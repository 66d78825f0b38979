#!/usr/bin/env bash
# make vmtest: the netem backend, proven where netem exists. Boots Debian's stock kernel under
# QEMU with this machine's own filesystem (virtme-ng), runs scripts/vm-inside.sh there, then
# checks what it wrote (experiments/bench/vmcheck.py). Installs what it needs, like setup.sh.
# KVM is not usable on these machines, so the VM runs under TCG: slow, loose timings, real
# function; timing inside is judged against references taken in the same VM run, so that a
# slower emulated CPU (VMTEST_CPUS=1, or a busy host) passes for the right reasons.
# Output: results/vmtest/<time>/ (doctor, tests, fidelity, one experiment).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh

VM_PACKAGES=(qemu-system-x86 busybox-static linux-image-amd64)
missing=()
for pkg in "${VM_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if ((${#missing[@]})); then
    if [ "$(id -u)" != 0 ]; then
        echo "vmtest: Debian packages missing (${missing[*]}); run 'sudo make vmtest'." >&2
        exit 1
    fi
    echo "vmtest: installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
if [ ! -x .venv/bin/vng ]; then
    echo "vmtest: installing virtme-ng into .venv"
    .venv/bin/pip install -q --disable-pip-version-check virtme-ng 2>&1 \
        | { grep -v "^WARNING: Location 'file:" || true; }
fi

kernel=$(ls /boot/vmlinuz-*-amd64 2>/dev/null | sort -V | tail -1)
if [ -z "$kernel" ]; then
    echo "vmtest: no Debian kernel in /boot (linux-image-amd64 did not install one)" >&2
    exit 1
fi
cpus=${VMTEST_CPUS:-2}
out=${VMTEST_OUT:-results/vmtest/$(date +%Y%m%d-%H%M%S)}
mkdir -p "$out"
out=$(realpath "$out")
echo "vmtest: booting $(basename "$kernel") under QEMU (TCG, $cpus CPUs); output in $out"
start=$(date +%s)
# The VM's exit status is that of the last command inside; the verdict comes from vmcheck.
PATH="$PWD/.venv/bin:$PATH" .venv/bin/vng --run "$kernel" --disable-kvm --user root --cpus "$cpus" --memory 4G \
    --rwdir "$PWD" --exec "$PWD/scripts/vm-inside.sh $out" </dev/null \
    > "$out/console.txt" 2>&1 || true
echo "vmtest: the VM ran for $(( $(date +%s) - start )) s"
.venv/bin/python -m experiments.bench.vmcheck "$out"
