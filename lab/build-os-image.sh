#!/usr/bin/env bash
# Builds the lab's OperatingSystem image: Debian bookworm (debootstrap minbase + systemd + the cloud kernel +
# cloud-init), as a raw disk image with an MBR, one ext4 partition and GRUB — assembled without loop devices or
# mounts: mke2fs -d fills the filesystem from a directory, sfdisk writes the partition table into a file, and
# GRUB's boot.img and a core.img with an embedded config are written into the MBR and the gap after it (where
# grub-install would put them). Needs root (debootstrap, chroot), Debian's mirror, debootstrap, e2fsprogs, fdisk,
# grub-pc-bin. Output: <out>/debian-12.raw and <out>/debian-12.raw.sha256. Cached: does nothing if they exist.
set -euo pipefail
out=${1:-"$(dirname "$0")/build/os"}
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
img="$out/debian-12.raw"
[ -s "$img" ] && [ -s "$img.sha256" ] && { echo "os image: $img (cached)"; exit 0; }
mkdir -p "$out"
root="$out/rootfs"
t0=$(date +%s)

if [ ! -e "$root/.debootstrap-done" ]; then
  rm -rf "$root"
  debootstrap --variant=minbase --include=systemd-sysv,udev,ifupdown,isc-dhcp-client,iproute2,netbase bookworm "$root" "$mirror"
  # The kernel and cloud-init through apt inside: debootstrap's resolver does not follow virtual packages
  # (python3-cryptography needs python3-cffi-backend-api-*).
  mount -t proc proc "$root/proc"
  trap 'umount "$root/proc" 2>/dev/null || true' EXIT
  chroot "$root" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive chroot "$root" apt-get install -y -qq --no-install-recommends linux-image-cloud-amd64 initramfs-tools cloud-init
  umount "$root/proc"
  touch "$root/.debootstrap-done"
fi
echo "debootstrap: $(($(date +%s) - t0)) s"

# The machine's identity and boot: root on the first virtio disk, serial console, DHCP on whatever NIC it has.
echo metalplane-lab >"$root/etc/hostname"
printf '/dev/vda1 / ext4 defaults,errors=remount-ro 0 1\n' >"$root/etc/fstab"
mkdir -p "$root/etc/cloud/cloud.cfg.d"
# Only NoCloud: the agent's write-datasource step points it at metalplane; probing others costs minutes under TCG.
cat >"$root/etc/cloud/cloud.cfg.d/90-metalplane-lab.cfg" <<'EOF'
datasource_list: [ NoCloud, None ]
EOF
# Smaller and faster to write: no docs, manuals, locales, apt caches.
chroot "$root" apt-get clean
rm -rf "$root"/usr/share/doc/* "$root"/usr/share/man/* "$root"/usr/share/info/* "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/*.bin
find "$root/usr/share/locale" -mindepth 1 -maxdepth 1 ! -name 'en*' -exec rm -rf {} + 2>/dev/null || true

# The filesystem: used size plus room to boot and run (no growpart in the image).
used_mb=$(du -sm --exclude=./proc --exclude=./sys "$root" | cut -f1)
part_mb=$((used_mb + used_mb / 5 + 128))
part="$out/part.ext4"
rm -f "$part"
mke2fs -q -t ext4 -L root -d "$root" -E root_owner=0:0 "$part" "${part_mb}M"

# The disk: 1 MiB for the MBR and GRUB's core, then the partition.
rm -f "$img.tmp"
truncate -s $((part_mb + 1))M "$img.tmp"
echo 'start=2048, type=83, bootable' | sfdisk -q "$img.tmp"
dd if="$part" of="$img.tmp" bs=1M seek=1 conv=notrunc,sparse status=none
rm -f "$part"

# GRUB without grub-install: core.img (with biosdisk, msdos partitions, ext2 and linux, and the boot commands
# embedded) goes to sector 1, where boot.img's default kernel sector (1) and diskboot's default blocklist
# (sector 2 on) expect it; boot.img's code goes in front of the partition table.
grubdir=/usr/lib/grub/i386-pc
cat >"$out/embed.cfg" <<'EOF'
set root=(hd0,msdos1)
set timeout=0
linux /vmlinuz root=/dev/vda1 ro console=ttyS0 net.ifnames=0
initrd /initrd.img
boot
EOF
grub-mkimage -O i386-pc -o "$out/core.img" -c "$out/embed.cfg" -p '(hd0,msdos1)/boot/grub' biosdisk part_msdos ext2 linux boot echo
core_sectors=$((($(stat -c %s "$out/core.img") + 511) / 512))
[ "$core_sectors" -lt 2047 ] || { echo "core.img of $core_sectors sectors does not fit before the partition" >&2; exit 1; }
dd if="$grubdir/boot.img" of="$img.tmp" bs=440 count=1 conv=notrunc status=none
dd if="$out/core.img" of="$img.tmp" bs=512 seek=1 conv=notrunc status=none

mv "$img.tmp" "$img"
sha256sum "$img" | cut -d' ' -f1 >"$img.sha256"
echo "os image: $img ($(du -h --apparent-size "$img" | cut -f1), $(($(date +%s) - t0)) s)"
