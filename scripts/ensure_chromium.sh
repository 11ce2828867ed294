#!/usr/bin/env bash
# Installs Debian's chromium for the quality report's browser test (tests/test_quality_browser.py)
# when it is missing. Needs root and apt-get; elsewhere it says what to do. In CI (CI=true) a
# missing chromium fails the browser test instead of skipping it.
set -euo pipefail
if command -v chromium >/dev/null 2>&1 || [ -x /usr/bin/chromium ]; then
  exit 0
fi
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "installing chromium (apt-get) for the report's browser test"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
  exit 0
fi
echo "warning: chromium is not installed and cannot be installed here (needs root and apt-get);" \
     "the report's browser test will be skipped (it fails under CI=true)" >&2
