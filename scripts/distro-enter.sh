#!/usr/bin/env bash
# distro-enter.sh ROOT COMMAND...: run COMMAND as root inside another Debian's root file system
# on this machine's kernel, the way a machine booted from it would see itself. A chroot is not
# enough: Mininet's `mnexec -cdn` needs / to be a mount point, and `mnexec -a` enters a node's
# mount namespace and would land in this machine's real root. So: a mount namespace of its own
# (nothing leaks back), ROOT bound onto itself, /proc, /sys, /dev and fresh /run and /tmp, then
# pivot_root into it and drop the old root.
set -euo pipefail
root=$(realpath "$1")
shift
exec unshare --mount --propagation private -- bash -euo pipefail -c '
root=$1; shift
mount --bind "$root" "$root"
mount -t proc proc "$root/proc"
mount --rbind /sys "$root/sys"
mount --rbind /dev "$root/dev"
mount -t tmpfs -o mode=0755 tmpfs "$root/run"
mount -t tmpfs -o mode=1777 tmpfs "$root/tmp"
cp -L /etc/resolv.conf "$root/etc/resolv.conf"
mkdir -p "$root/oldroot"
cd "$root"
pivot_root . oldroot
umount -l /oldroot
cd /
exec env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/root \
    LANG=C.UTF-8 TERM="${TERM:-dumb}" "$@"
' distro-enter "$root" "$@"
