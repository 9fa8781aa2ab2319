#!/bin/busybox sh
# /init of the agent's initramfs: busybox, the virtio drivers, DHCP on every NIC, then the Node agent
# (lab/agent-main.ts), which reads its parameters from the kernel command line.
/bin/busybox --install -s /bin
export PATH=/bin:/sbin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mount -t tmpfs tmpfs /tmp
echo "metalplane boot image: $(uname -r)"
for m in $(cat /lib/modules/order); do insmod "/lib/modules/$m.ko" 2>/dev/null; done
mdev -s 2>/dev/null
ip link set lo up
for n in /sys/class/net/*; do
  i=${n##*/}
  [ "$i" = lo ] && continue
  ip link set "$i" up
  udhcpc -i "$i" -t 10 -T 2 -n -q -s /usr/share/udhcpc/default.script && break
done
ip -4 addr show | grep inet
echo "metalplane agent: starting"
cd /agent
while :; do
  node dist/lab/agent-main.js
  echo "metalplane agent exited ($?); restarting in 5 s"
  sleep 5
done
