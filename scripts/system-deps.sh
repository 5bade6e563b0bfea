#!/usr/bin/env bash
# The system packages a make target needs, installed when they are missing.
#
#   scripts/system-deps.sh test|demo
#
# Everything present: one dpkg-query and no apt call, so every `make test` can run it. Something
# missing: installed with apt-get when this user may (root, or password-less sudo); otherwise it
# stops, before any test runs, naming each missing package and the command that installs it.
#
# Environment:
#   SYSTEM_DEPS_INSTALL=0        never install: report what is missing and exit 1
#   SYSTEM_DEPS_PACKAGES="a b"   check these Debian packages instead of the list below ("" for none)
#   SYSTEM_DEPS_TOOLS="a b"      check these commands instead of the tools below ("" for none)
#   PYTHON                       the interpreter `make setup` builds the venv from (python3)
#   CI=true                      a missing tool that apt cannot install (terraform) is an error too;
#                                locally its tests skip with their reason, so it is only a warning
set -euo pipefail

target=${1:-test}
case "$target" in test | demo) ;; *) echo "usage: $0 test|demo" >&2; exit 2 ;; esac

SYSTEM_PYTHON=/usr/bin/python3  # what tests/servers/rtsp_server.py runs under (Debian's GObject bindings)

gst_element() {  # a GStreamer element the system Python can load
  "$SYSTEM_PYTHON" -c "import gi; gi.require_version('Gst', '1.0'); from gi.repository import Gst; Gst.init(None); assert Gst.ElementFactory.find('$1')" 2>/dev/null
}

names=() targets=() probes=() whys=()
# pkg NAME TARGETS PROBE WHY: PROBE (a shell command, "-" for none) tells the part is there though
# dpkg does not list the package (built from source, another distribution); WHY is shown when missing.
pkg() { names+=("$1"); targets+=("$2"); probes+=("$3"); whys+=("$4"); }

pkg python3-venv      "demo test" '"${PYTHON:-python3}" -c "import ensurepip"' \
  "make setup: python3 -m venv needs ensurepip, which Debian packages apart"
pkg redis-server      "test" 'command -v redis-server' \
  "a real Redis: tests/integration/test_redis_cache.py, test_analyze.py, test_api.py, test_api_analyze.py"
pkg python3-gi        "test" '"$SYSTEM_PYTHON" -c "import gi"' \
  "the RTSP source (tests/servers/rtsp_server.py) of tests/integration/test_streams.py"
pkg gir1.2-gst-rtsp-server-1.0 "test" '"$SYSTEM_PYTHON" -c "import gi; gi.require_version(\"GstRtspServer\", \"1.0\")"' \
  "GStreamer's RTSP server for tests/integration/test_streams.py"
pkg gstreamer1.0-plugins-base "test" 'gst_element videotestsrc' \
  "videotestsrc, the moving test pattern of tests/integration/test_streams.py"
pkg gstreamer1.0-plugins-good "test" 'gst_element rtph264pay' \
  "rtph264pay, RTP packets of the test stream in tests/integration/test_streams.py"
pkg gstreamer1.0-plugins-ugly "test" 'gst_element x264enc' \
  "x264enc, the H.264 encoder of the test stream in tests/integration/test_streams.py"
pkg prometheus        "test" 'command -v prometheus && command -v promtool' \
  "a real Prometheus (and promtool): tests/e2e/test_observability_prometheus.py, make bench-obs"
pkg chromium          "test" 'command -v chromium' \
  "a real browser for the pages the API serves: tests/integration/test_api_contract.py (/docs), tests/e2e/test_console_browser.py"
pkg chromium-driver   "test" 'command -v chromedriver' \
  "WebDriver for headless Chromium, driven by Selenium in tests/e2e/test_console_browser.py (the web console)"

# Tools apt cannot install: checked, and said how to get.
tool_names=() tool_targets=() tool_hints=()
tool() { tool_names+=("$1"); tool_targets+=("$2"); tool_hints+=("$3"); }

tool terraform "test" \
  "Terraform >= 1.11 (tests/terraform): https://developer.hashicorp.com/terraform/install"

# The overrides let the script be tried on what a machine lacks without removing anything from it.
if [[ -n "${SYSTEM_DEPS_PACKAGES+set}" ]]; then
  names=() targets=() probes=() whys=()
  for name in $SYSTEM_DEPS_PACKAGES; do pkg "$name" "$target" - "listed in SYSTEM_DEPS_PACKAGES"; done
fi
if [[ -n "${SYSTEM_DEPS_TOOLS+set}" ]]; then
  tool_names=() tool_targets=() tool_hints=()
  for name in $SYSTEM_DEPS_TOOLS; do tool "$name" "$target" "$name (listed in SYSTEM_DEPS_TOOLS)"; done
fi

# The wanted packages dpkg does not list as installed, in one dpkg-query call.
missing_packages() {
  local wanted=() i
  for i in "${!names[@]}"; do
    [[ " ${targets[$i]} " == *" $target "* ]] && wanted+=("$i")
  done
  ((${#wanted[@]})) || return 0
  local installed=""
  if command -v dpkg-query >/dev/null; then
    local want_names=()
    for i in "${wanted[@]}"; do want_names+=("${names[$i]}"); done
    installed=$(dpkg-query -W -f='${Package} ${db:Status-Status}\n' "${want_names[@]}" 2>/dev/null \
      | awk '$2 == "installed" { print $1 }') || true
  fi
  for i in "${wanted[@]}"; do
    grep -qx -- "${names[$i]}" <<<"$installed" && continue
    [[ "${probes[$i]}" != "-" ]] && eval "${probes[$i]}" >/dev/null 2>&1 && continue
    echo "$i"
  done
}

# A read loop rather than mapfile: macOS still ships bash 3.2.
find_missing() { missing=(); while IFS= read -r i; do missing+=("$i"); done < <(missing_packages); }
find_missing

if ((${#missing[@]})); then
  missing_names=()
  for i in "${missing[@]}"; do missing_names+=("${names[$i]}"); done
  sudo=""
  can_install=1
  [[ "${SYSTEM_DEPS_INSTALL:-1}" == 0 ]] && can_install=0
  command -v apt-get >/dev/null || can_install=0
  if ((can_install)) && ((EUID != 0)); then
    if command -v sudo >/dev/null && sudo -n true 2>/dev/null; then sudo="sudo"; else can_install=0; fi
  fi
  if ((can_install)); then
    echo "system-deps: installing ${missing_names[*]}"
    export DEBIAN_FRONTEND=noninteractive
    $sudo apt-get update -qq && $sudo apt-get install -y -qq "${missing_names[@]}" >/dev/null \
      || { echo "system-deps: apt-get failed while installing ${missing_names[*]}" >&2; exit 1; }
    find_missing
  fi
  if ((${#missing[@]})); then
    {
      echo "system-deps: \`make $target\` needs these system packages, which are missing:"
      missing_names=()
      for i in "${missing[@]}"; do
        missing_names+=("${names[$i]}")
        printf '  %-28s %s\n' "${names[$i]}" "${whys[$i]}"
      done
      if command -v apt-get >/dev/null; then
        prefix=""; ((EUID == 0)) || prefix="sudo "
        echo "Install them with:"
        echo "  ${prefix}apt-get update && ${prefix}apt-get install -y ${missing_names[*]}"
      else
        echo "Install these Debian packages, or your system's equivalents, with its package manager."
      fi
    } >&2
    exit 1
  fi
fi

tool_missing=0
for i in "${!tool_names[@]}"; do
  [[ " ${tool_targets[$i]} " == *" $target "* ]] || continue
  command -v "${tool_names[$i]}" >/dev/null && continue
  tool_missing=1
  echo "system-deps: ${tool_names[$i]} is not on PATH; install ${tool_hints[$i]}" >&2
done
if ((tool_missing)); then
  [[ "${CI:-}" == true ]] && { echo "system-deps: required when CI=true" >&2; exit 1; }
  echo "system-deps: the tests that use it will be skipped" >&2
fi
exit 0
