#!/usr/bin/env bash
# Install what splinterlab needs on Debian/Ubuntu, then the project itself into .venv.
# Idempotent: when everything is present it only checks, which takes about a second.
set -euo pipefail
cd "$(dirname "$0")/.."

# Debian packages (scripts/requirements.txt: the emulator, routing, enforcement, a C compiler
# and kernel headers for the userspace delay program, services, clients, the tools a minimal
# image lacks).
mapfile -t APT_PACKAGES < <(grep -v '^#' scripts/requirements.txt | awk 'NF {print $1}')

missing=()
for pkg in "${APT_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if ((${#missing[@]})); then
    if [ "$(id -u)" != 0 ]; then
        echo "setup: Debian packages missing (${missing[*]}); run 'sudo make setup'." >&2
        exit 1
    fi
    # openssh-server is there for the cluster's test bed (namespace servers, each with an
    # sshd of its own): installing it must not start an sshd on a machine that had none
    if [[ " ${missing[*]} " == *" openssh-server "* ]] && [ ! -e /etc/ssh/sshd_not_to_be_run ]; then
        mkdir -p /etc/ssh
        echo "splinterlab's setup: no system sshd here (delete this file to have one)" \
            > /etc/ssh/sshd_not_to_be_run
    fi
    echo "setup: installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# The venv must come from Debian's interpreter: only it sees Debian's mininet module.
if [ ! -x .venv/bin/python ] || ! .venv/bin/python -c "import mininet" 2>/dev/null; then
    rm -rf .venv
    /usr/bin/python3 -m venv --system-site-packages .venv
fi
stamp=.venv/.splinterlab-installed
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
    echo "setup: installing splinterlab into .venv"
    # (pip.conf on some machines names local mirrors that may be absent: drop that noise only)
    .venv/bin/pip install -q --disable-pip-version-check -e '.[test]' 2>&1 \
        | { grep -v "^WARNING: Location 'file:" || true; }
    [ "${PIPESTATUS[0]}" = 0 ]
    touch "$stamp"
fi

# Small C parts, each rebuilt whenever one of its files changes: the userspace delay path, the
# bare limit of an admission decision, the floor of its datagram I/O and a gateway asking as
# fast as asked (bench admission's yardsticks and load), the compiled decisions.
build() {  # build TARGET FILE... -- [GCC ARGUMENTS...]: the .c files of FILE are compiled
    local target=$1 stale= files=()
    shift
    while [ "$1" != -- ]; do
        [ -e "$target" ] && [ ! "$1" -nt "$target" ] || stale=1
        [[ $1 == *.c ]] && files+=("$1")
        shift
    done
    shift
    if [ -n "$stale" ]; then
        echo "setup: building $target"
        gcc -O2 -Wall -Wextra -Werror -o "$target" "${files[@]}" "$@"
    fi
}
build .venv/bin/splinterlab-delayd topologies/delayd.c --
build .venv/bin/splinterlab-barelimit protocols/registered/{barelimit.c,hmac256.h,bigendian.h} -- -lcrypto
build .venv/bin/splinterlab-loadgen protocols/registered/{loadgen.c,hmac256.h,bigendian.h} -- -lcrypto
build .venv/bin/splinterlab-iofloor protocols/registered/{iofloor.c,serveio.h} --
build .venv/lib/libsplinterlab-admit.so \
    protocols/registered/{admitcore.c,flowcore.c,admitcore.h,hmac256.h,bigendian.h,serveio.h} \
    -- -shared -fPIC -lcrypto
