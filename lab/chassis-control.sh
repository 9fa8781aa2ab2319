#!/bin/sh
# ipmi_sim's chassis_control program (lan.conf `chassis_control "<this> <state dir>"`): ipmi_sim runs it for
# Chassis Control and boot options as `<this> <state dir> <mc> get power boot …` (prints `power:1`, `boot:pxe`)
# and `<this> <state dir> <mc> set power 1 | reset 1 | boot pxe …`. State is kept in <state dir>: `boot` (none,
# pxe, default, cdrom, bios) and, for a machine, `machine.pid`. If <state dir>/start exists, it is the machine:
# power on runs it detached (it reads `boot` to choose the boot order, as firmware reads the BMC's override at
# POST), power off kills it, reset kills and starts it again. Without it the machine is only the `power` file.
set -u
dir=$1; shift
shift # the MC address (0x20), given in lan.conf after the state dir
op=${1:-}; [ $# -gt 0 ] && shift

is_on() {
  if [ -x "$dir/start" ]; then
    [ -f "$dir/machine.pid" ] && kill -0 "$(cat "$dir/machine.pid")" 2>/dev/null
  else
    [ "$(cat "$dir/power" 2>/dev/null || echo 0)" = 1 ]
  fi
}

power_on() {
  if [ -x "$dir/start" ]; then
    is_on && return 0
    # Detached, its own session, no descriptors shared with ipmi_sim: ipmi_sim waits for this script's output.
    setsid "$dir/start" </dev/null >>"$dir/machine.log" 2>&1 &
    echo $! >"$dir/machine.pid"
  else
    echo 1 >"$dir/power"
  fi
  echo "$(date +%s.%N) on" >>"$dir/events"
}

power_off() {
  if [ -x "$dir/start" ]; then
    if [ -f "$dir/machine.pid" ]; then
      pid=$(cat "$dir/machine.pid")
      kill -TERM "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null
      i=0
      while kill -0 "$pid" 2>/dev/null && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
      kill -KILL "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null
      rm -f "$dir/machine.pid"
    fi
  else
    echo 0 >"$dir/power"
  fi
  echo "$(date +%s.%N) off" >>"$dir/events"
}

case $op in
get)
  for p in "$@"; do
    case $p in
    power) if is_on; then echo power:1; else echo power:0; fi ;;
    boot) echo "boot:$(cat "$dir/boot" 2>/dev/null || echo default)" ;;
    *) echo "Invalid parameter: $p"; exit 1 ;;
    esac
  done
  ;;
set)
  while [ $# -ge 2 ]; do
    case $1 in
    power) if [ "$2" = 1 ]; then power_on; else power_off; fi ;;
    reset) if [ "$2" = 1 ] && is_on; then power_off; power_on; echo "$(date +%s.%N) reset" >>"$dir/events"; fi ;;
    boot)
      case $2 in none | pxe | default | cdrom | bios) echo "$2" >"$dir/boot" ;; *) echo "Invalid boot value: $2"; exit 1 ;; esac ;;
    identify) shift ;;
    *) echo "Invalid parameter: $1"; exit 1 ;;
    esac
    shift 2
  done
  ;;
*) echo "Unknown operation: $op"; exit 1 ;;
esac
