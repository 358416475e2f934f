#!/usr/bin/env bash
# How long `bgrun notify` takes per channel, and how long a dead channel costs, as
# medians and ratios to the console-only baseline measured in the same run.
# Needs hyperfine and python3. Usage: scripts/bench/notify.sh [runs]
set -euo pipefail
cd "$(dirname "$0")/../.."
runs=${1:-15}
cargo build -q
bin=$PWD/target/debug/bgrun
work=$(mktemp -d)
silent_pid=""
cleanup() { [ -n "$silent_pid" ] && kill "$silent_pid" 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT
cd "$work"
git init -q
# A D-Bus address that accepts connections and never answers (a hung bus).
python3 -c '
import socket, sys, time
s = socket.socket(socket.AF_UNIX); s.bind(sys.argv[1]); s.listen(64)
held = []
while True:
    c, _ = s.accept(); held.append(c)
' "$work/silent-bus" &
silent_pid=$!
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cat > cfg.json <<JSON
{"notifications": {"channels": {
  "desktop": {"enabled": true, "min_severity": "info", "timeout_ms": 1000, "retries": 1},
  "email": {"enabled": true, "min_severity": "info", "smtp_server": "127.0.0.1", "smtp_port": $port,
            "tls": "none", "to_emails": ["a@example.com"], "timeout_seconds": 5}}}}
JSON
n="$bin --config cfg.json notify -s error -t bench -m message"
hyperfine -N -w 2 -r "$runs" -i --export-json "$work/out.json" \
  -n console "env -u DBUS_SESSION_BUS_ADDRESS $n --channel console" \
  -n file "env -u DBUS_SESSION_BUS_ADDRESS $n --channel file" \
  -n desktop-no-bus "env -u DBUS_SESSION_BUS_ADDRESS -u XDG_RUNTIME_DIR $n --channel desktop" \
  -n desktop-silent-bus "env DBUS_SESSION_BUS_ADDRESS=unix:path=$work/silent-bus $n --channel desktop" \
  -n email-server-down "$n --channel email" \
  -n all-five-dead-desktop-email "env DBUS_SESSION_BUS_ADDRESS=unix:path=$work/silent-bus $n" \
  >/dev/null 2>&1
python3 - "$work/out.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))["results"]
base = r[0]["median"]
print(f"{'case':32} {'median ms':>10} {'ratio':>8}")
for x in r:
    print(f"{x['command']:32} {x['median']*1000:10.1f} {x['median']/base:8.2f}")
PY
