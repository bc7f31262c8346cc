# Shared by the scripts: paths, the virtualenv, the emulator. Source it; don't run it.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/.venv"
STATE="$ROOT/.local"
mkdir -p "$STATE"

# Credentials and region for the emulator; real AWS settings in the environment win.
export AWS_ACCESS_KEY_ID="${AWS_ACCESS_KEY_ID:-test}"
export AWS_SECRET_ACCESS_KEY="${AWS_SECRET_ACCESS_KEY:-test}"
export AWS_REGION="${AWS_REGION:-us-east-1}"
export AWS_DEFAULT_REGION="${AWS_DEFAULT_REGION:-$AWS_REGION}"
export SAM_CLI_TELEMETRY=0
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"

log() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }

# Creates .venv and installs infra/local/requirements.txt when it changed.
ensure_venv() {
  local stamp="$VENV/.requirements.sha256"
  local want
  want="$(sha256sum "$ROOT/infra/local/requirements.txt" | cut -d' ' -f1)"
  if [[ -f "$stamp" && "$(cat "$stamp")" == "$want" ]]; then
    return
  fi
  log "installing local tools into .venv (moto, cargo-lambda, sam, cfn-lint)"
  [[ -x "$VENV/bin/python" ]] || python3 -m venv "$VENV"
  "$VENV/bin/pip" install --quiet --disable-pip-version-check -r "$ROOT/infra/local/requirements.txt"
  echo "$want" >"$stamp"
}

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

port_open() {
  python3 -c 'import socket,sys; s=socket.socket(); s.settimeout(0.5); sys.exit(0 if s.connect_ex(("127.0.0.1",int(sys.argv[1])))==0 else 1)' "$1"
}

wait_for_port() {
  local port="$1" what="$2" tries="${3:-100}"
  for _ in $(seq "$tries"); do
    port_open "$port" && return 0
    sleep 0.2
  done
  echo "$what did not start on port $port" >&2
  return 1
}

# Starts moto on $1; its pid goes to $STATE/moto-$1.pid and its log next to it.
start_moto() {
  local port="$1"
  "$VENV/bin/python" "$ROOT/infra/local/moto_server.py" --port "$port" \
    >"$STATE/moto-$port.log" 2>&1 &
  echo $! >"$STATE/moto-$port.pid"
  wait_for_port "$port" "moto"
}

stop_pidfile() {
  local file="$1"
  [[ -f "$file" ]] || return 0
  kill "$(cat "$file")" 2>/dev/null || true
  rm -f "$file"
}
