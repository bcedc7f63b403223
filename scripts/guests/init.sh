#!/bin/busybox sh
# The guest kit's init: mount the kernel's filesystems, load the modules the
# image was built with, say the guest is ready, then either run the commands
# given on the kernel command line as tsvirt.run="cmd; cmd" and power off,
# or give the console an interactive shell.
/bin/busybox --install -s /bin
export PATH=/bin
mkdir -p /proc /sys /dev /tmp /root
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
[ -f /etc/modules ] && while read -r module; do insmod "$module" || echo "tsvirt: insmod $module failed"; done < /etc/modules
echo "TSVIRT-READY $(uname -r)"
commands=$(sed -n 's/.*tsvirt\.run="\([^"]*\)".*/\1/p' /proc/cmdline)
if [ -n "$commands" ]; then
  IFS=';'
  for command in $commands; do
    echo "TSVIRT-BEGIN $command"
    sh -c "$command"
    echo "TSVIRT-END $?"
  done
  echo "TSVIRT-DONE"
else
  echo "tsvirt: busybox shell; 'poweroff -f' or exit to power off"
  setsid cttyhack sh
fi
poweroff -f
