#!/usr/bin/env bash
# Everything CI checks, in order: formatting, lints (with and without the window), the test
# suite (README's test command), and the real-window test under Xvfb.
# `.ci/run` installs the system packages and then runs this; run it locally the same way.
set -euo pipefail
cd "$(dirname "$0")/.."
echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== clippy (with the window)"
cargo clippy --all-targets -- -D warnings
echo "== clippy (headless build)"
cargo clippy --no-default-features --all-targets -- -D warnings
echo "== cargo test"
cargo test
echo "== real window under Xvfb"
cargo build --release
scripts/window-test.sh target/ci-window.png
