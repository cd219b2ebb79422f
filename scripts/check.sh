#!/usr/bin/env bash
# Everything CI checks, in order: formatting, lints (with and without the window), the test
# suite (README's test command), and the real-window test under Xvfb.
# `.ci/run` installs the system packages and then runs this; run it locally the same way.
set -euo pipefail
cd "$(dirname "$0")/.."
echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== clippy (the workspace: core and window)"
cargo clippy --workspace --all-targets -- -D warnings
echo "== clippy (the core crate alone, which must build without egui)"
cargo clippy -p cnn-stepper-core --all-targets -- -D warnings
if cargo tree -p cnn-stepper-core -e normal,dev | grep -q egui; then
  echo "cnn-stepper-core depends on egui" >&2
  exit 1
fi
echo "== cargo test"
cargo test
echo "== the full MNIST and Fashion-MNIST checks (ignored by default: they need ../shared/data)"
cargo test -p cnn-stepper-core --test data -- --ignored
echo "== disk after the tests: $(du -sh target 2>/dev/null | cut -f1) in target, $(df -h . | awk 'NR==2 {print $4}') free"
echo "== real window under Xvfb"
cargo build --release
scripts/window-test.sh target/ci-window.png
