#!/usr/bin/env bash
# endurance-window: memory of the real window over a long Run (issue: an hour of training must
# keep memory flat). Starts cnn-stepper on a private Xvfb display, presses Space (Run, fast
# engine, batch 32) and lets it train for MINUTES minutes, sampling the process's resident
# memory (VmRSS) and the step counter from the frame log every 5 s. Prints a line at 1, 10, 30
# and 60 minutes (those within the run) and the whole series to LOG.
#
# usage: scripts/endurance-window.sh [MINUTES=60] [LOG=target/endurance.log]
# needs: Xvfb, xdotool, a release build (cargo build --release).
set -euo pipefail
minutes=${1:-60}
log=${2:-target/endurance.log}
bin=${BIN:-target/release/cnn-stepper}
disp=":$((200 + RANDOM % 100))"
work=$(mktemp -d)
mkdir -p "$work/runtime" "$work/data" "$work/config" && chmod 700 "$work/runtime"
Xvfb "$disp" -screen 0 1280x800x24 -nolisten tcp >/dev/null 2>&1 &
xpid=$!
trap 'kill $apid $xpid 2>/dev/null || true; rm -rf "$work"' EXIT
sleep 2
export DISPLAY=$disp XDG_RUNTIME_DIR=$work/runtime XDG_DATA_HOME=$work/data XDG_CONFIG_HOME=$work/config
CNN_STEPPER_FRAME_LOG=1 "$bin" >"$log" 2>&1 &
apid=$!
wid=$(timeout 60 xdotool search --sync --name '^cnn-stepper$' | head -n 1)
sleep 3
xdotool windowfocus --sync "$wid" 2>/dev/null || true
xdotool mousemove 60 82 key space
start=$(date +%s)
for mark in 1 10 30 60; do
  [ "$mark" -le "$minutes" ] || break
  while [ $(( $(date +%s) - start )) -lt $((mark * 60)) ]; do
    kill -0 "$apid" || { echo "endurance: the program died; see $log" >&2; exit 1; }
    sleep 5
  done
  echo "endurance: after $mark min: $(grep 'frame log, memory' "$log" | tail -n 1 | sed 's/frame log, memory: //')"
done
case " 1 10 30 60 " in
  *" $minutes "*) ;;
  *)
    while [ $(( $(date +%s) - start )) -lt $((minutes * 60)) ]; do sleep 5; done
    echo "endurance: after $minutes min: $(grep 'frame log, memory' "$log" | tail -n 1 | sed 's/frame log, memory: //')"
    ;;
esac
grep 'frame log, so far' "$log" | tail -n 1
