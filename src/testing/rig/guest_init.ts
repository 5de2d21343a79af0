// The two shell scripts that run inside the test VM.
//
// STAGE1_INIT is /init of the initramfs, run by busybox as PID 1. It loads the
// modules shipped in the initramfs, builds a root file system out of the
// host's root (read-only, over 9p) plus fresh tmpfs mounts, and switches into
// it. The new root is a tmpfs whose top-level directories are bind mounts of
// the host's, rather than the 9p mount itself, so that the rig can add
// directories of its own (/share, /run/aionbd) that the host does not have,
// without ever writing to the host.
//
// STAGE2_LOOP is then PID 1 (the host's /bin/sh) in that root: it serves
// commands sent by the host over a virtio-serial port. Each request is one
// line, "<nonce> <base64 of the script>"; the script runs in a subshell
// with its stdout and stderr on the port, followed by an end marker that
// carries the nonce (so a command cannot fake it) and the exit code.
//
// Every request costs one fork and one exec of the initramfs's static busybox
// (to decode it), no more: under TCG an exec of a dynamically linked program
// takes about 100 ms, so decoding with the host's base64 and starting a new
// /bin/sh for the script made each command cost a third of a second before it
// ran, and the kernel tests send a few hundred.

/** Kernel command line switches read by STAGE1_INIT from /proc/cmdline. */
export const CMDLINE_SHARE = 'aionbd.share=1';
export const CMDLINE_MODULES = 'aionbd.modules=1';

/** 9p mount tags; the host side is in qemu_args.ts. */
export const TAG_HOSTROOT = 'hostroot';
export const TAG_HOSTLIVE = 'hostlive';
export const TAG_SHARE = 'share';
export const TAG_MODULES = 'modules';

/** virtio-serial port name of the command channel. */
export const COMMAND_PORT_NAME = 'aionbd.cmd';

/** First line the guest writes on the command channel once it takes commands. */
export const READY_LINE = 'AIONBD-READY';

/** Guest address that guestfwd rules listen on. */
export const GUEST_FORWARD_ADDRESS = '10.0.2.100';

/** Guest path of the writable share (VmOptions.shareDir). */
export const GUEST_SHARE_DIR = '/share';

/** The initramfs's static busybox, copied where the command loop finds it after switch_root. */
export const GUEST_BUSYBOX = '/run/aionbd/busybox';

/** Where the full module tree is mounted; `modprobe` in the guest is wrapped to use it. */
export const GUEST_MODULES_ROOT = '/run/aionbd/modroot';

/** Prefix of the end marker; the full marker is `\n@@AIONBD-END <nonce> <rc>@@\n`. */
export const END_MARKER_PREFIX = '\n@@AIONBD-END ';
export const END_MARKER_SUFFIX = '@@\n';

// msize: the 9p default (8 KiB in 6.1) makes every large read a dozen round
// trips; 256 KiB is well within what QEMU's virtio transport accepts.
const NINEP = 'trans=virtio,version=9p2000.L,msize=262144';

export const STAGE1_INIT = `#!/bin/busybox sh
/bin/busybox mkdir -p /proc /sys /dev /sbin /usr/bin /usr/sbin /hostroot /newroot
/bin/busybox --install -s
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev

say() { echo "aionbd-init: $*"; }
# Power off rather than exit: an exiting PID 1 panics, which hides the reason.
die() { say "FATAL: $*"; sleep 1; poweroff -f; }

say "starting"

# Dependency order was resolved on the host; a failure is reported, not
# fatal, so that the console shows every missing piece at once.
load() {
  while read -r m; do
    [ -n "$m" ] || continue
    insmod "/lib/modules/$m" || say "insmod $m failed"
  done < "$1"
}
# What the root needs (virtio, 9p) first; the rest (nbd, file systems) loads
# in the background (on another vCPU, if the VM has one) while the root is put
# together.
load /etc/aionbd-modules-boot
load /etc/aionbd-modules-extra &
extra=$!

share=0
modules=0
for arg in $(cat /proc/cmdline); do
  case "$arg" in
    ${CMDLINE_SHARE}) share=1 ;;
    ${CMDLINE_MODULES}) modules=1 ;;
  esac
done

ip link set lo up
if [ -d /sys/class/net/eth0 ]; then
  ip addr add 10.0.2.15/24 dev eth0
  ip link set eth0 up
fi

# The host root is mounted twice. System directories go through the page
# cache (cache=loose): every exec in the guest reads them, and uncached 9p
# makes starting node take seconds under TCG. Everything else (the project's
# tree, home directories) stays uncached, so that files the host writes while
# the VM runs are seen at once.
mkdir -p /hostlive
mount -t 9p -o ${NINEP},ro,cache=loose ${TAG_HOSTROOT} /hostroot || die "cannot mount the host root over 9p"
mount -t 9p -o ${NINEP},ro ${TAG_HOSTLIVE} /hostlive || die "cannot mount the host root over 9p (uncached)"
mount -t tmpfs -o mode=0755 aionbd-root /newroot || die "cannot mount the root tmpfs"
for e in /hostroot/* /hostroot/.[!.]*; do
  n="\${e##*/}"
  if [ -L "$e" ]; then
    ln -s "$(readlink "$e")" "/newroot/$n"
  elif [ -d "$e" ]; then
    mkdir "/newroot/$n"
    case "$n" in
      proc|sys|dev|tmp|run|mnt|media|lost+found) ;;
      usr|etc|opt|var|boot|srv|bin|sbin|lib|lib32|lib64|libx32)
        mount -o bind "$e" "/newroot/$n" || say "cannot bind /$n" ;;
      *) mount -o bind "/hostlive/$n" "/newroot/$n" || say "cannot bind /$n" ;;
    esac
  fi
done

cd /newroot || die "no /newroot"
mkdir -p proc sys dev tmp run mnt
mount -t proc proc proc
mount -t sysfs sysfs sys
mount -t devtmpfs devtmpfs dev
mkdir -p dev/pts dev/shm
mount -t devpts -o gid=5,mode=620,ptmxmode=666 devpts dev/pts
mount -t tmpfs -o mode=1777 tmpfs dev/shm
mount -t tmpfs -o mode=1777 tmpfs tmp
mount -t tmpfs -o mode=0755 tmpfs run
mount -t tmpfs -o mode=0755 tmpfs mnt
[ -d var/tmp ] && mount -t tmpfs -o mode=1777 tmpfs var/tmp
mkdir -p run/lock run/aionbd/bin
if [ "$share" = 1 ]; then
  mkdir -p .${GUEST_SHARE_DIR}
  mount -t 9p -o ${NINEP} ${TAG_SHARE} .${GUEST_SHARE_DIR} || die "cannot mount the share"
fi
if [ "$modules" = 1 ]; then
  mkdir -p .${GUEST_MODULES_ROOT}/lib/modules
  mount -t 9p -o ${NINEP},ro ${TAG_MODULES} .${GUEST_MODULES_ROOT}/lib/modules || say "cannot mount the module tree"
  # The host's kmod, pointed at the Debian kernel's module tree; the kernel
  # uses it too for its own requests (fs-xfs, crypto-crc32c, ...).
  printf '#!/bin/sh\\nexec /sbin/modprobe -d ${GUEST_MODULES_ROOT} "$@"\\n' > run/aionbd/bin/modprobe
  chmod 755 run/aionbd/bin/modprobe
fi
cp /loop.sh run/aionbd/loop.sh
cp /bin/busybox .${GUEST_BUSYBOX}

wait $extra
cd /
umount -l /hostroot /hostlive
umount -l /proc /sys /dev
exec switch_root /newroot /bin/sh /run/aionbd/loop.sh
`;

export const STAGE2_LOOP = `# PID 1 after switch_root: the command loop.
export PATH=/run/aionbd/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
export HOME=/root TERM=dumb LANG=C.UTF-8
[ -x /run/aionbd/bin/modprobe ] && echo /run/aionbd/bin/modprobe > /proc/sys/kernel/modprobe

# The port shows up when the host's port-add message has been handled, which
# can trail the module load; wait for it rather than race it.
port=
tries=0
while [ -z "$port" ] && [ $tries -lt 600 ]; do
  for p in /sys/class/virtio-ports/*; do
    if [ "$(cat "$p/name" 2>/dev/null)" = ${COMMAND_PORT_NAME} ] && [ -c "/dev/\${p##*/}" ]; then
      port="/dev/\${p##*/}"
    fi
  done
  [ -n "$port" ] || { sleep 0.1; tries=$((tries + 1)); }
done
if [ -z "$port" ]; then
  echo "aionbd: no command port"
  exec /bin/busybox poweroff -f
fi

exec 3<>"$port"
echo "aionbd: command loop on $port"
printf '${READY_LINE}\\n' >&3
while IFS= read -r line <&3; do
  nonce="\${line%% *}"
  ${GUEST_BUSYBOX} base64 -d > /run/aionbd/cmd.sh <<AIONBD_REQUEST
\${line#* }
AIONBD_REQUEST
  # A subshell, not a new sh: the script sees none of this loop's variables
  # and ends (exit N included) as a script run by sh would.
  (unset line nonce port p tries rc; cd / && . /run/aionbd/cmd.sh) </dev/null >&3 2>&3 3>&-
  rc=$?
  printf '${END_MARKER_PREFIX.replace('\n', '\\n')}%s %s${END_MARKER_SUFFIX.replace('\n', '\\n')}' "$nonce" "$rc" >&3
done
echo "aionbd: command channel closed"
exec /bin/busybox poweroff -f
`;
