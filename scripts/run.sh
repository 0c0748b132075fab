#!/usr/bin/env bash
# Starts the embedded default on one machine: Rasa (running the custom actions in its own
# process, bot/inprocess_actions.py) and the handoff gateway, waits until each answers, prints
# the URLs, and stops them all on Ctrl-C. LOANBOT_ACTIONS=remote starts the action server too
# and has Rasa call it. `--shell` starts the action server and opens `rasa shell` instead.
set -euo pipefail
cd "$(dirname "$0")/.."

export RASA_TELEMETRY_ENABLED=false
PY=.venv/bin/python
GATEWAY_PY="$("$PY" -m handoff.interpreter)"  # .venv-gateway's Python 3.11 if set up
RASA=.venv/bin/rasa
MODEL=models/loanbot.tar.gz
ACTION_PORT="${ACTION_PORT:-5055}"
RASA_PORT="${RASA_PORT:-5005}"
HANDOFF_PORT="${HANDOFF_PORT:-8080}"
HANDOFF_HOST="${HANDOFF_HOST:-127.0.0.1}"
export LOANBOT_ACTIONS="${LOANBOT_ACTIONS:-inprocess}"
case "$LOANBOT_ACTIONS" in
  inprocess|remote) ;;
  *) echo "ERROR: LOANBOT_ACTIONS must be inprocess or remote, not '$LOANBOT_ACTIONS'" >&2; exit 1 ;;
esac
[ "${1:-}" = "--shell" ] && LOANBOT_ACTIONS=remote  # plain `rasa shell` calls the action server
mkdir -p var/log

# Rasa's HTTP API (used by the gateway to resume paused conversations) is protected by a token
# that lives only on this machine.
if [ ! -s var/rasa_token ]; then
  (umask 077; "$PY" -c 'import secrets; print(secrets.token_urlsafe(32))' > var/rasa_token)
fi
RASA_TOKEN="$(cat var/rasa_token)"
export HANDOFF_RASA_TOKEN="$RASA_TOKEN"
export HANDOFF_RASA_URL="${HANDOFF_RASA_URL:-http://127.0.0.1:$RASA_PORT}"

pids=()
cleanup() {
  for pid in "${pids[@]:-}"; do [ -n "$pid" ] && kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap cleanup EXIT INT TERM

port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
wait_for() {  # name url seconds logfile
  local name=$1 url=$2 limit=$3 log=$4
  for _ in $(seq 1 "$limit"); do
    if "$PY" - "$url" <<'PYEOF' 2>/dev/null; then return 0; fi
import sys, urllib.request
urllib.request.urlopen(sys.argv[1], timeout=2).read()
PYEOF
    sleep 1
  done
  echo "ERROR: $name did not come up within ${limit}s; last lines of $log:" >&2
  tail -n 30 "$log" >&2
  exit 1
}

# bot/endpoints.yml names the action server on its default port; another ACTION_PORT gets a
# copy pointing there, so Rasa calls the action server this script started.
ENDPOINTS=bot/endpoints.yml
if [ "$ACTION_PORT" != 5055 ]; then
  ENDPOINTS=var/endpoints.yml
  sed "s#http://127.0.0.1:5055/webhook#http://127.0.0.1:$ACTION_PORT/webhook#" bot/endpoints.yml >"$ENDPOINTS"
  grep -q "127.0.0.1:$ACTION_PORT/webhook" "$ENDPOINTS" || {
    echo "ERROR: could not point $ENDPOINTS at the action server on port $ACTION_PORT" >&2; exit 1; }
fi

ports=("$RASA_PORT")
[ "$LOANBOT_ACTIONS" = remote ] && ports+=("$ACTION_PORT")
for port in "${ports[@]}"; do
  if port_busy "$port"; then echo "ERROR: port $port is in use (another 'make run'?)" >&2; exit 1; fi
done

if [ "$LOANBOT_ACTIONS" = remote ]; then
  echo "==> starting action server on 127.0.0.1:$ACTION_PORT (log: var/log/actions.log)"
  # 120 s keep-alive: see tests/stack.py (a model switch stalls Rasa longer than Sanic's 5 s).
  SANIC_KEEP_ALIVE_TIMEOUT=120 SANIC_HOST=127.0.0.1 "$PY" -m rasa_sdk --actions actions -p "$ACTION_PORT" >var/log/actions.log 2>&1 &
  pids+=($!)
  wait_for "action server" "http://127.0.0.1:$ACTION_PORT/health" 60 var/log/actions.log
fi

if [ "${1:-}" = "--shell" ]; then
  "$RASA" shell -m "$MODEL" --endpoints "$ENDPOINTS"
  exit 0
fi

echo "==> starting Rasa on 127.0.0.1:$RASA_PORT, custom actions $LOANBOT_ACTIONS (log: var/log/rasa.log)"
# `python -m bot.serve` is `rasa` minus per-turn overheads (bot/tuning.py; LOANBOT_RASA_TUNING=0
# for plain Rasa), running the custom actions in its process unless LOANBOT_ACTIONS=remote.
"$PY" -m bot.serve run -m "$MODEL" --endpoints "$ENDPOINTS" --credentials bot/credentials.yml \
  -i 127.0.0.1 -p "$RASA_PORT" --enable-api --auth-token="$RASA_TOKEN" >var/log/rasa.log 2>&1 &
pids+=($!)
wait_for "Rasa" "http://127.0.0.1:$RASA_PORT/" 180 var/log/rasa.log

gateway_up=no
if [ -f handoff/__main__.py ]; then
  if port_busy "$HANDOFF_PORT"; then echo "ERROR: port $HANDOFF_PORT is in use" >&2; exit 1; fi
  echo "==> starting handoff gateway on $HANDOFF_HOST:$HANDOFF_PORT (log: var/log/handoff.log)"
  HANDOFF_HOST="$HANDOFF_HOST" HANDOFF_PORT="$HANDOFF_PORT" "$GATEWAY_PY" -m handoff >var/log/handoff.log 2>&1 &
  pids+=($!)
  wait_for "gateway" "http://$HANDOFF_HOST:$HANDOFF_PORT/healthz" 60 var/log/handoff.log
  gateway_up=yes
fi

cat <<EOM

  贷款客服 loan-service assistant is running.
EOM
if [ "$gateway_up" = yes ]; then
cat <<EOM
  Borrower chat page:  http://$HANDOFF_HOST:$HANDOFF_PORT/
  Agent console:       http://$HANDOFF_HOST:$HANDOFF_PORT/agent/
  Gateway socket.io:   http://$HANDOFF_HOST:$HANDOFF_PORT/socket.io
EOM
fi
cat <<EOM
  Rasa REST webhook:   http://127.0.0.1:$RASA_PORT/webhooks/rest/webhook
EOM
if [ "$LOANBOT_ACTIONS" = remote ]; then
  echo "  Action server:       http://127.0.0.1:$ACTION_PORT/webhook"
else
  echo "  Custom actions:      inside Rasa (LOANBOT_ACTIONS=remote for the action server)"
fi
cat <<EOM
  Quick chat without the gateway: make shell
  Logs: var/log/   Stop: Ctrl-C
EOM
wait -n "${pids[@]}"
echo "A service exited; see var/log/. Stopping the others." >&2
exit 1
