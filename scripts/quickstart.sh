#!/usr/bin/env bash
# quickstart.sh - the README's first command: installs the dependencies, builds
# vmoduled, starts a private mosquitto broker on a free loopback port and
# vmodule-cloud serve beside it (the Tencent cloud side: $sys time, the
# gateway, report_version replies, dynamic registration over HTTPS), and runs
# one virtual module per dialect (tencent, w800, me3630) on PTYs under
# /tmp/vmodule, then prints how to talk to them. Ctrl-C stops everything it
# started and removes its temporary directory.
#
#   scripts/quickstart.sh [--no-deps] [--state-dir DIR] [--link-dir DIR]
#
#   --no-deps        do not run scripts/install-deps.sh
#   --state-dir DIR  keep the modules' "flash" in DIR (default: a temp dir,
#                    removed on exit, so every run starts from factory state)
#   --link-dir DIR   where the PTY symlinks go (default /tmp/vmodule)
#
# Run it as your own user: install-deps.sh asks for sudo only when packages
# are missing. When started with sudo it installs as root and then runs the
# build and the daemon as the invoking user, so that user can open the PTYs.
# Functions called only from traps or by computed name ("${dialect}_json")
# look unreachable to shellcheck.
# shellcheck disable=SC2317
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PYTHON=/usr/bin/python3
# /usr/sbin is not on a normal user's PATH on Debian.
MOSQUITTO=$(command -v mosquitto || echo /usr/sbin/mosquitto)
LINK_DIR=/tmp/vmodule
STATE_DIR=
DEPS=1
ORIG_ARGS=("$@")

usage() { sed -n '2,17p' "$0" | sed 's/^# \{0,1\}//'; }

while (($#)); do
  case "$1" in
    --no-deps) DEPS=0 ;;
    --state-dir) STATE_DIR=${2:?--state-dir needs a directory}; shift ;;
    --link-dir) LINK_DIR=${2:?--link-dir needs a directory}; shift ;;
    -h|--help) usage; exit 0 ;;
    *) echo "quickstart.sh: unknown option: $1" >&2; usage >&2; exit 2 ;;
  esac
  shift
done

say() { if [[ -t 1 ]]; then printf '\033[1m==> %s\033[0m\n' "$*"; else printf '==> %s\n' "$*"; fi; }

# --- 1. dependencies, then drop root if we came in through sudo ---------------
if ((DEPS)); then
  say "installing dependencies (scripts/install-deps.sh)"
  "$ROOT/scripts/install-deps.sh"
fi
if [[ $(id -u) == 0 && -n "${SUDO_USER:-}" && "${SUDO_USER}" != root ]]; then
  say "continuing as $SUDO_USER (the PTYs will belong to that user)"
  exec sudo -u "$SUDO_USER" -- "$0" --no-deps "${ORIG_ARGS[@]}"
fi

# --- 2. build ------------------------------------------------------------------
say "building (make)"
make -C "$ROOT" -j2
VMODULED=$ROOT/build/vmoduled

# --- 3. everything below is stopped and removed by cleanup() ------------------
WORK=$(mktemp -d "${TMPDIR:-/tmp}/vmodule-quickstart.XXXXXX")
if [[ -n "$STATE_DIR" ]]; then STATE_DIR=$(realpath -m "$STATE_DIR"); else STATE_DIR=$WORK/state; fi
BROKER_PID=
DAEMON_PID=
TAIL_PID=
CLOUD_PID=

stop_pid() { # pid: SIGTERM, wait up to 5 s, then SIGKILL
  local pid=$1 i
  [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null || return 0
  kill -TERM "$pid" 2>/dev/null || true
  for ((i = 0; i < 100; i++)); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.05
  done
  kill -KILL "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
}

cleanup() {
  trap - INT TERM EXIT
  echo
  say "stopping vmoduled, mosquitto and removing $WORK"
  stop_pid "$DAEMON_PID"
  stop_pid "$TAIL_PID"
  stop_pid "$CLOUD_PID"
  stop_pid "$BROKER_PID"
  rm -rf "$WORK"
  rmdir "$LINK_DIR" 2>/dev/null || true # only if empty: our links are gone
}
trap 'cleanup; exit 130' INT
trap 'cleanup; exit 143' TERM
trap cleanup EXIT

free_port() {
  "$PYTHON" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# Waits until a TCP connect to 127.0.0.1:$1 succeeds, or the process $2 dies.
wait_port() {
  local port=$1 pid=$2 i
  for ((i = 0; i < 200; i++)); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then return 0; fi
    kill -0 "$pid" 2>/dev/null || return 1
    sleep 0.05
  done
  return 1
}

# --- 4. a private broker ---------------------------------------------------------
BROKER_PORT=$(free_port)
cat >"$WORK/mosquitto.conf" <<EOF
# written by scripts/quickstart.sh: loopback only, anonymous, nothing on disk
listener $BROKER_PORT 127.0.0.1
allow_anonymous true
persistence false
log_dest stderr
log_type error
log_type warning
log_type notice
EOF
say "starting mosquitto on 127.0.0.1:$BROKER_PORT"
"$MOSQUITTO" -c "$WORK/mosquitto.conf" 2>"$WORK/mosquitto.log" &
BROKER_PID=$!
if ! wait_port "$BROKER_PORT" "$BROKER_PID"; then
  echo "quickstart.sh: mosquitto did not start:" >&2
  cat "$WORK/mosquitto.log" >&2
  exit 1
fi

# --- 4b. the local Tencent cloud (vmodule-cloud serve) ---------------------------
# Its CA lives with the module state, so a module pointed at it keeps trusting
# it across runs that keep --state-dir.
CLOUD_PORT=$(free_port)
CLOUD_CERTS=$STATE_DIR/vmodule-cloud-certs
QS_PRODUCT_SECRET=vmodule-quickstart-product-key
say "starting vmodule-cloud serve (registration on https://127.0.0.1:$CLOUD_PORT)"
mkdir -p "$STATE_DIR"
"$PYTHON" "$ROOT/scripts/vmodule-cloud" serve --broker "127.0.0.1:$BROKER_PORT" \
  --http-port "$CLOUD_PORT" --cert-dir "$CLOUD_CERTS" \
  --product "PRODUCT001:$QS_PRODUCT_SECRET" >"$WORK/vmodule-cloud.log" 2>&1 &
CLOUD_PID=$!
if ! wait_port "$CLOUD_PORT" "$CLOUD_PID"; then
  echo "quickstart.sh: vmodule-cloud serve did not start:" >&2
  cat "$WORK/vmodule-cloud.log" >&2
  exit 1
fi

# --- 5. the daemon configuration -----------------------------------------------
# Wi-Fi: one simulated access point that the ESP-family modules join at
# power-on (auto_join) when nothing is stored in their flash yet.
WIFI_JSON='"wifi": {"access_points": [{"ssid": "vmodule-ap", "password": "vmodule-pass"}], "auto_join": "vmodule-ap"}'

# ---- MQTT broker keys: ONE FUNCTION PER DIALECT -------------------------------
# The tencent and me3630 modules are pointed at the local broker (plain TCP);
# the w800 MCU names its broker itself with AT+MQTTUSERCFG/AT+MQTTCONN.
# VMODULE_QS_MQTT="" leaves every module on its dialect's cloud defaults.
QS_MQTT=${VMODULE_QS_MQTT-tencent me3630}
mqtt_on() { [[ " $QS_MQTT " == *" $1 "* ]]; }

tencent_json() { # members of the module's "tencent" object
  printf '%s' "$WIFI_JSON"
  if mqtt_on tencent; then
    printf ', "mqtt_host": "127.0.0.1", "mqtt_port": %d, "mqtt_transport": "tcp"' "$BROKER_PORT"
  fi
  printf ', "dynreg_url": "https://127.0.0.1:%d/register/dev", "dynreg_ca_file": "%s"' \
    "$CLOUD_PORT" "$CLOUD_CERTS/ca.crt"
  printf ', "ota_ca_file": "%s"' "$CLOUD_CERTS/ca.crt"
}
w800_json() { # the MCU names the broker itself (AT+MQTTCONN): only Wi-Fi here
  printf '%s' "$WIFI_JSON"
}
me3630_json() { # the real ME3630 prints no banner; "ready" here is for people
  printf '"boot_urcs": ["ready"]'
  if mqtt_on me3630; then
    printf ', "aliyun": {"mqtt_host": "127.0.0.1", "mqtt_port": %d, "transport": "tcp"}' "$BROKER_PORT"
  fi
}
# ---- end of the MQTT block -----------------------------------------------------

module_json() { # name dialect link
  printf '    {"name": "%s", "dialect": "%s", "pty_link": "%s", "baud": 115200,\n' "$1" "$2" "$3"
  printf '     "%s": {%s}}' "$2" "$("${2}_json")"
}

mkdir -p "$LINK_DIR" "$STATE_DIR"
CFG=$WORK/vmoduled.json
NAMES=(tencent0 w800-0 me3630-0)
DIALECTS=(tencent w800 me3630)
{
  printf '{\n  "state_dir": "%s",\n  "log_level": "info",\n  "modules": [\n' "$STATE_DIR"
  for i in "${!NAMES[@]}"; do
    ((i == 0)) || printf ',\n'
    module_json "${NAMES[$i]}" "${DIALECTS[$i]}" "$LINK_DIR/${NAMES[$i]}"
  done
  printf '\n  ]\n}\n'
} >"$CFG"

# --- 6. the daemon -----------------------------------------------------------------
say "starting vmoduled -c $CFG"
"$VMODULED" -c "$CFG" 2>"$WORK/vmoduled.log" &
DAEMON_PID=$!

# The symlinks appear once every module is created; a config error makes the
# daemon exit (status 2) before creating anything.
for ((i = 0; i < 200; i++)); do
  up=1
  for n in "${NAMES[@]}"; do [[ -L "$LINK_DIR/$n" ]] || up=0; done
  ((up)) && break
  if ! kill -0 "$DAEMON_PID" 2>/dev/null; then up=0; break; fi
  sleep 0.05
done
if ((!up)); then
  echo "quickstart.sh: vmoduled did not start; its log:" >&2
  cat "$WORK/vmoduled.log" >&2
  echo "configuration was:" >&2
  cat "$CFG" >&2
  exit 1
fi

cat <<EOF

==> vmodule is running (pid $DAEMON_PID)

  module     dialect  PTY
  tencent0   tencent  $LINK_DIR/tencent0   -> $(readlink "$LINK_DIR/tencent0")
  w800-0     w800     $LINK_DIR/w800-0     -> $(readlink "$LINK_DIR/w800-0")
  me3630-0   me3630   $LINK_DIR/me3630-0   -> $(readlink "$LINK_DIR/me3630-0")

  Each PTY is paced at 115200 baud with echo on (ATE0 turns it off). A module
  powers on when you first open its PTY: it prints "ready" (AT+RST shows it
  again) and the ESP-family ones (tencent0, w800-0) then join the simulated
  access point "vmodule-ap" (WIFI CONNECTED, WIFI GOT IP).

  Talk to one in another terminal (type the commands, Enter sends CR LF):

    socat - $LINK_DIR/tencent0,raw,echo=0,crlf

    AT                                  -> OK
    AT+GMR                              -> AT version:2.0.0.0(...) ... OK
    AT+CWJAP?                           -> +CWJAP:"vmodule-ap","18:31:bf:4b:2c:01",6,-45,0,1,3,0,1  OK
    AT+CIPSTA?                          -> +CIPSTA:ip:"192.168.1.100" ... OK
    AT+CWQAP                            -> OK, then WIFI DISCONNECT
    AT+CWJAP="vmodule-ap","vmodule-pass" -> WIFI CONNECTED, WIFI GOT IP, OK
    AT+RST                              -> OK, then ready (and WIFI CONNECTED)

  Then MQTT through the local broker (tencent0 uses plain TCP with the signed
  username/password here):

    AT+TCDEVINFOSET=1,"PRODUCT001","dev1","ZHNkIGRzZCA="  -> OK, +TCDEVINFOSET:OK
    AT+TCMQTTCONN=1,5000,240,1,1                         -> OK, +TCMQTTCONN:OK
    AT+TCMQTTSUB="PRODUCT001/dev1/data",0                -> OK, +TCMQTTSUB:OK
    AT+TCMQTTPUB="PRODUCT001/dev1/data",0,"hello"        -> OK, +TCMQTTPUB:OK,
                                 +TCMQTTRCVPUB:"PRODUCT001/dev1/data",5,"hello"

  and on me3630-0 (commands end with CR; socat's crlf option is fine):

    AT+ZECMCALL=1                               -> +ZECMCALL: CONNECT  OK
    AT+CLOUDAUTH=a1PK,dev1,secret               -> OK  +ALIAUTH: OK
    AT+CLOUDCONN                                -> OK
    AT+CLOUDPUB=/a1PK/dev1/data,0,hi            -> OK

  Local MQTT broker: 127.0.0.1:$BROKER_PORT; watch it with
    mosquitto_sub -h 127.0.0.1 -p $BROKER_PORT -t '#' -v

  Local Tencent cloud (vmodule-cloud serve, log $WORK/vmodule-cloud.log):
  dynamic registration of product PRODUCT001 (product secret
  $QS_PRODUCT_SECRET) on tencent0:

    AT+TCPRDINFOSET=1,"PRODUCT001","$QS_PRODUCT_SECRET","dev2" -> OK, +TCPRDINFOSET:OK
    AT+TCDEVREG                                               -> OK, +TCDEVREG:OK

  and an OTA of any file, from another terminal (then AT+TCOTASET=1,"1.0.0"
  on tencent0 while it is connected):

    scripts/vmodule-cloud ota push --broker 127.0.0.1:$BROKER_PORT --product PRODUCT001 \\
      --device dev1 --cert-dir $CLOUD_CERTS --wait-version FILE --version 2.0.0

  Module state (the simulated flash): $STATE_DIR
  Press Ctrl-C to stop. The daemon's log follows.

EOF

tail -n +1 -f --pid="$DAEMON_PID" "$WORK/vmoduled.log" &
TAIL_PID=$!
status=0
wait "$DAEMON_PID" || status=$?
DAEMON_PID=
echo "quickstart.sh: vmoduled exited with status $status" >&2
exit "$status"
