#!/usr/bin/env bash
# `make sam-local-check` (a CI step of its own): SAM's emulator, `sam local start-api`, serves
# GET /status, GET /history and POST /uploads of this app from the local stack's moto server
# (scripts/sam_local.py check). What it needs, it sets up:
#   - docker.io and debootstrap from apt-get (as root) when missing;
#   - dockerd, started in the background when no Docker daemon answers, stopped at the end;
#   - the stand-in Lambda python3.13 image (cached in Docker; its Debian 13 root filesystem in
#     $SAM_LOCAL_CACHE, default ~/.cache/imgsvc/sam-local).
# Where this machine cannot run a container at all (no apt-get or root to install Docker, a
# daemon that cannot start or cannot run a container), it prints `SAM LOCAL CHECK SKIPPED:`
# and why, and exits 0. Anything else that goes wrong fails (exit 1), and so does running out
# of time: SAM_LOCAL_CHECK_TIMEOUT seconds (default 900) for the check itself.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

PY=${PY:-.venv/bin/python}
LIMIT=${SAM_LOCAL_CHECK_TIMEOUT:-900}
CACHE=${SAM_LOCAL_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/imgsvc/sam-local}
export SAM_LOCAL_CACHE=$CACHE SAM_CLI_TELEMETRY=0
mkdir -p "$CACHE"
started=$SECONDS

skip() {
  echo "SAM LOCAL CHECK SKIPPED: $*" >&2
  exit 0
}

can_apt() { command -v apt-get >/dev/null && [ "$(id -u)" -eq 0 ]; }

# ---------------------------------------------------------------- packages
packages=()
if ! command -v dockerd >/dev/null && ! "$PY" -c 'import docker; docker.from_env().ping()' \
    >/dev/null 2>&1; then
  packages+=(docker.io)
fi
command -v debootstrap >/dev/null || packages+=(debootstrap)
if [ ${#packages[@]} -gt 0 ]; then
  if can_apt; then
    echo "sam-local: installing ${packages[*]}"
    apt-get update -qq || true
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${packages[@]}" >/dev/null ||
      echo "sam-local: apt-get could not install ${packages[*]}" >&2
  else
    echo "sam-local: cannot install ${packages[*]} (needs apt-get as root)" >&2
  fi
fi

# ---------------------------------------------------------------- the Docker daemon
dockerd_pid=""
stop_dockerd() {
  if [ -n "$dockerd_pid" ] && kill -0 "$dockerd_pid" 2>/dev/null; then
    echo "sam-local: stopping the dockerd this check started (pid $dockerd_pid)"
    kill "$dockerd_pid" 2>/dev/null || true
    for _ in $(seq 40); do kill -0 "$dockerd_pid" 2>/dev/null || break; sleep 0.5; done
    kill -0 "$dockerd_pid" 2>/dev/null && kill -9 "$dockerd_pid" 2>/dev/null || true
  fi
}
trap stop_dockerd EXIT

if ! "$PY" -c 'import docker; docker.from_env().ping()' >/dev/null 2>&1; then
  command -v dockerd >/dev/null ||
    skip "no Docker daemon answers and dockerd is not installed (apt-get install docker.io, as root)"
  [ "$(id -u)" -eq 0 ] ||
    skip "no Docker daemon answers and starting dockerd needs root (uid $(id -u))"
  if [ -n "${DOCKER_HOST:-}" ]; then
    skip "DOCKER_HOST=$DOCKER_HOST does not answer (not starting a daemon for another host)"
  fi
  echo "sam-local: starting dockerd (log: $CACHE/dockerd.log)"
  dockerd >"$CACHE/dockerd.log" 2>&1 &
  dockerd_pid=$!
  for _ in $(seq 60); do
    "$PY" -c 'import docker; docker.from_env().ping()' >/dev/null 2>&1 && break
    kill -0 "$dockerd_pid" 2>/dev/null || break
    sleep 0.5
  done
  if ! kill -0 "$dockerd_pid" 2>/dev/null; then
    dockerd_pid=""
    tail -n 5 "$CACHE/dockerd.log" >&2 || true
    skip "dockerd exited at start: $(grep -E 'level=(error|fatal)' "$CACHE/dockerd.log" | tail -n 1)"
  fi
  "$PY" -c 'import docker; docker.from_env().ping()' >/dev/null 2>&1 ||
    skip "dockerd did not answer within 30 s (log: $CACHE/dockerd.log)"
fi

set +e
reason=$("$PY" -m scripts.sam_local probe 2>&1)
probe=$?
set -e
echo "$reason"
[ "$probe" -eq 3 ] && skip "$(echo "$reason" | tail -n 1)"
[ "$probe" -eq 0 ] || { echo "sam-local: the probe failed (exit $probe)" >&2; exit 1; }

# ---------------------------------------------------------------- the check
set +e
timeout --kill-after=30 "$LIMIT" "$PY" -m scripts.sam_local check
status=$?
set -e
if [ "$status" -eq 124 ]; then
  echo "SAM LOCAL CHECK FAILED: it took longer than $LIMIT s (SAM_LOCAL_CHECK_TIMEOUT)" >&2
elif [ "$status" -ne 0 ]; then
  echo "SAM LOCAL CHECK FAILED (exit $status)" >&2
else
  echo "sam-local: check passed in $((SECONDS - started)) s (setup included)"
fi
exit "$status"
