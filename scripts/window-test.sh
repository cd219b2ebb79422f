#!/usr/bin/env bash
# window-test: the real-window smoke test. Starts cnn-stepper on a private Xvfb display, steps a
# batch and runs training with the keyboard, takes a screenshot and checks that the program is
# still alive and that the picture is not blank; then saves the session with Ctrl+S and the window
# as PNG from the File menu, both through the window's file dialog.
#
# usage: scripts/window-test.sh [SCREENSHOT.png]        (default docs/screenshot-main.png)
# environment:
#   BIN=target/release/cnn-stepper   the program (build it first: cargo build --release)
#   RUN_SECS=10                      seconds of Run before the screenshot
#   SIZE=1280x800                    screen (and window) size
#   TAB=2                            tab shown in the screenshot: 1 feature maps, 2 filters
#   KEEP_LOG=0                       1 keeps the program's output next to the screenshot
#
# It installs nothing: it needs Xvfb, xdotool and ImageMagick (CI installs xvfb, xdotool,
# imagemagick and mesa-vulkan-drivers; wgpu falls back to Mesa's software Vulkan, lavapipe).
# The program runs with CNN_STEPPER_FRAME_LOG=1 and the script prints its frame-rate lines.
# Exit status: 0 when every check passed, 1 when one failed, 2 when something is missing.
set -euo pipefail

shot=${1:-docs/screenshot-main.png}
bin=${BIN:-target/release/cnn-stepper}
run_secs=${RUN_SECS:-10}
size=${SIZE:-1280x800}
tab=${TAB:-2}

missing=()
for tool in Xvfb xdotool import convert identify; do
  command -v "$tool" >/dev/null || missing+=("$tool")
done
if ((${#missing[@]})); then
  echo "window-test: missing ${missing[*]} (install xvfb, xdotool and imagemagick)" >&2
  exit 2
fi
if [ ! -x "$bin" ]; then
  echo "window-test: no program at $bin (run: cargo build --release)" >&2
  exit 2
fi

disp=""
for n in $(seq 90 160); do
  if [ ! -e "/tmp/.X11-unix/X$n" ] && [ ! -e "/tmp/.X$n-lock" ]; then disp=":$n"; break; fi
done
if [ -z "$disp" ]; then
  echo "window-test: no free X display between :90 and :160" >&2
  exit 2
fi

work=$(mktemp -d)
chmod 700 "$work"
log="$work/cnn-stepper.log"
xpid="" apid=""
cleanup() {
  [ -n "$apid" ] && kill "$apid" 2>/dev/null || true
  [ -n "$xpid" ] && kill "$xpid" 2>/dev/null || true
  if [ "${KEEP_LOG:-0}" = 1 ] && [ -f "$log" ]; then cp "$log" "$shot.log"; fi
  rm -rf "$work"
}
trap cleanup EXIT

fail() {
  echo "window-test: FAIL: $*" >&2
  if [ -s "$log" ]; then
    echo "window-test: last lines of the program's output:" >&2
    tail -n 25 "$log" >&2
  fi
  exit 1
}

Xvfb "$disp" -screen 0 "${size}x24" -nolisten tcp >/dev/null 2>&1 &
xpid=$!
for _ in $(seq 100); do [ -e "/tmp/.X11-unix/X${disp#:}" ] && break; sleep 0.1; done
[ -e "/tmp/.X11-unix/X${disp#:}" ] || fail "Xvfb did not start on $disp"

# A private runtime dir (winit wants one) and private data/config dirs, so that eframe's saved
# state from other runs cannot change what this run shows.
mkdir -p "$work/runtime" "$work/data" "$work/config"
chmod 700 "$work/runtime"
export DISPLAY=$disp XDG_RUNTIME_DIR=$work/runtime XDG_DATA_HOME=$work/data XDG_CONFIG_HOME=$work/config
export CNN_STEPPER_FRAME_LOG=1

echo "window-test: starting $bin on $disp ($size)"
"$bin" >"$log" 2>&1 &
apid=$!

wid=$(timeout 60 xdotool search --sync --name '^cnn-stepper' 2>/dev/null | head -n 1) || true
[ -n "$wid" ] || fail "no window named cnn-stepper appeared within 60 s"
kill -0 "$apid" 2>/dev/null || fail "the program exited right after opening its window"
# The first frames (wgpu setup on a software renderer) take a moment.
sleep 3
xdotool windowfocus --sync "$wid" 2>/dev/null || xdotool windowfocus "$wid"
# Xvfb starts with the pointer in the middle of the screen, over the maps: park it on the
# pipeline's heading so that no tooltip covers the screenshot.
xdotool mousemove 60 82

press() {
  xdotool key --delay 50 "$@"
  sleep 0.5
  kill -0 "$apid" 2>/dev/null || fail "the program died after the keys: $*"
}

echo "window-test: Step batch (Shift+Right)"
press shift+Right
sleep 1
echo "window-test: Run (Space) for $run_secs s"
press space
sleep "$run_secs"
press "$tab"
sleep 1

mkdir -p "$(dirname "$shot")"
import -window root "$shot" || fail "could not take the screenshot"
kill -0 "$apid" 2>/dev/null || fail "the program is not running after $run_secs s of training"

# Files through the window's own dialog: Ctrl+S saves the session (a half-done step is finished
# first), and File → "Save the window as PNG…" writes the renderer's screenshot.
# Types PATH into the open file dialog's name field, presses Enter and waits for the file.
save_through_dialog() {
  press ctrl+a
  xdotool type --delay 20 "$1"
  press Return
  for _ in $(seq 50); do [ -s "$1" ] && break; sleep 0.2; done
  [ -s "$1" ] || fail "$2 did not write $1"
}
echo "window-test: Pause, then Ctrl+S into the file dialog"
press space
sleep 1
press ctrl+s
sleep 1
save_through_dialog "$work/session.safetensors" "Ctrl+S"
echo "window-test: saved the session ($(stat -c %s "$work/session.safetensors") bytes)"
echo "window-test: File → Save the window as PNG…"
xdotool mousemove 20 12 click 1
sleep 1
# The menu item under "PNG resolution 1× 2× 3×" and the two view PNGs (at 100 % zoom), below
# Open data…, Classify an image… and Open lesson….
xdotool mousemove 99 322 click 1
sleep 1
save_through_dialog "$work/window.png" "File → Save the window as PNG"
png_size=$(identify -format '%wx%h' "$work/window.png") || fail "$work/window.png is not a picture"
echo "window-test: the window as PNG: $png_size"
[ "$png_size" = "$size" ] || fail "the window PNG is $png_size, not the window's $size"

stddev=$(convert "$shot" -format '%[fx:standard_deviation]' info:)
colours=$(identify -format '%k' "$shot")
echo "window-test: screenshot $shot: standard deviation $stddev, $colours colours"
awk -v s="$stddev" 'BEGIN { exit !(s > 0.05) }' || fail "the screenshot is nearly uniform (standard deviation $stddev)"
[ "$colours" -gt 50 ] || fail "the screenshot has only $colours colours: is the window blank?"
if grep -q "panicked" "$log"; then fail "the program reported a panic"; fi

grep "frame log, so far" "$log" | tail -n 1 || true
grep "frame log, memory" "$log" | tail -n 1 || true
echo "window-test: PASS"
