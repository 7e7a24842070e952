#!/usr/bin/env bash
# Creates (or reuses) the virtual environment in .venv with every version pinned in
# constraints.txt, installs the OD API without its own unpinned dependency list, and
# compiles protos/. Idempotent: a second run with unchanged inputs only re-checks.
# Prints one line per step; pip's output goes to .venv/setup.log. Any failing step
# stops the script with a non-zero exit and the end of the log.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3.11}
VENV=${VENV:-.venv}
LOG="$VENV/setup.log"
HASH_FILE="$VENV/.tfod-setup-hash"

step() { printf 'setup: %s\n' "$1"; }
fail() {
  printf 'setup: FAILED: %s\n' "$1" >&2
  if [ -f "$LOG" ]; then
    printf 'setup: last lines of %s:\n' "$LOG" >&2
    tail -n 25 "$LOG" | sed 's/^/    /' >&2
  fi
  exit 1
}
run() {  # run DESCRIPTION CMD...: logs the command's output, fails loudly
  local what=$1; shift
  step "$what"
  { printf '\n### %s\n$ %s\n' "$what" "$*"; } >>"$LOG"
  "$@" >>"$LOG" 2>&1 || fail "$what (exit $?)"
}

# Headless Chromium for header detection from HTML (synth/html/): Debian's chromium package,
# driven by Playwright (no browser download). Installed here when missing, as root; otherwise
# setup stops with the command to run.
CHROMIUM_NAMES="chromium chromium-browser google-chrome google-chrome-stable"
have_chromium() { for n in $CHROMIUM_NAMES; do command -v "$n" >/dev/null 2>&1 && return 0; done; return 1; }
if have_chromium; then
  step "chromium: found ($(for n in $CHROMIUM_NAMES; do command -v "$n" 2>/dev/null && break; done))"
elif [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  mkdir -p "$VENV"
  policy=$(apt-cache policy chromium 2>/dev/null || true)  # not piped into grep -q: pipefail and SIGPIPE
  if ! grep -q 'Candidate: [0-9]' <<<"$policy"; then
    run "updating apt's package lists (no candidate for chromium yet)" apt-get update
  fi
  # The themes of synth/html use the DejaVu and Liberation fonts.
  run "installing chromium and its fonts with apt-get (headless browser for synth/html)" \
    env DEBIAN_FRONTEND=noninteractive apt-get install -y chromium fonts-dejavu-core fonts-dejavu-extra fonts-liberation
  have_chromium || fail "apt-get installed chromium but no chromium binary is on PATH"
else
  echo "setup: FAILED: chromium is missing (synth/html renders pages with it). Install it with:" >&2
  echo "    sudo apt-get install -y chromium fonts-dejavu-core fonts-dejavu-extra fonts-liberation" >&2
  echo "  then run make setup again." >&2
  exit 1
fi

command -v "$PYTHON" >/dev/null 2>&1 || {
  echo "setup: FAILED: $PYTHON not found; tfod-synth needs Python 3.11 (TensorFlow 2.15 has no wheels for newer). Set PYTHON=/path/to/python3.11." >&2; exit 1; }
"$PYTHON" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))' || {
  echo "setup: FAILED: $PYTHON is $("$PYTHON" -V 2>&1), tfod-synth needs Python 3.11 (TensorFlow 2.15.1)." >&2; exit 1; }

if [ -x "$VENV/bin/python" ] && ! "$VENV/bin/python" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))' 2>/dev/null; then
  step "removing $VENV: it is broken or not Python 3.11"
  rm -rf "$VENV"
fi
if [ ! -x "$VENV/bin/python" ]; then
  mkdir -p "$VENV"
  : >"$LOG"
  run "creating virtual environment $VENV with $("$PYTHON" -V 2>&1)" "$PYTHON" -m venv --clear "$VENV"
fi
PY="$VENV/bin/python"
PIP=("$PY" -m pip --disable-pip-version-check --no-input)

want=$(cat constraints.txt setup.cfg pyproject.toml | sha256sum | cut -d' ' -f1)
have=$(cat "$HASH_FILE" 2>/dev/null || true)
if [ "$want" = "$have" ]; then
  step "packages: up to date with constraints.txt (delete $HASH_FILE to reinstall)"
else
  rm -f "$HASH_FILE"
  run "installing pip (pinned)" "${PIP[@]}" install -c constraints.txt pip
  run "installing tfod-synth and its dependencies (pinned; the first time takes a few minutes)" \
    "${PIP[@]}" install -c constraints.txt -e ".[test]"
  run "installing the OD API (tf-models-research-object-detection, pinned, --no-deps)" \
    "${PIP[@]}" install --no-deps -c constraints.txt tf-models-research-object-detection
  echo "$want" >"$HASH_FILE"
fi

mkdir -p synth/protos
run "compiling protos/*.proto into synth/protos/" "$VENV/bin/protoc" -I protos --python_out=synth/protos protos/*.proto
run "checking that synth, TensorFlow and the OD API import" "$PY" -c \
  'import synth.config, tensorflow, object_detection.model_lib_v2, skimage, cv2'
run "checking that Playwright starts chromium and renders a page" "$PY" -c \
  'from synth.html.render import smoke_test; smoke_test()'
step "ready: $VENV ($("$PY" -c 'import tensorflow as tf, sys; print(f"Python {sys.version.split()[0]}, TensorFlow {tf.__version__}")' 2>/dev/null))"
