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

# Stops what pid file $1 names when the script exits (any number of them).
STOP_ON_EXIT=()
stop_on_exit() {
  STOP_ON_EXIT+=("$1")
  trap 'for f in "${STOP_ON_EXIT[@]}"; do stop_pidfile "$f"; done' EXIT
}

# The DynamoDB engine `make dev` and `make test` use: `moto` (the default) or `local`
# (DynamoDB Local, AWS's own engine, while moto keeps serving SQS). Read from $DYNAMODB.
dynamodb_engine() {
  case "${DYNAMODB:-moto}" in
    moto | local) echo "${DYNAMODB:-moto}" ;;
    *)
      echo "DYNAMODB=$DYNAMODB is not a DynamoDB engine: use DYNAMODB=moto (the default) or DYNAMODB=local (DynamoDB Local)" >&2
      return 1
      ;;
  esac
}

# DynamoDB Local: its jar ships inside the npm package amplify-dynamodb-simulator; it
# runs on the machine's Java 17. Fetched once into $STATE.
DYNAMODB_LOCAL_VERSION=2.9.30
DYNAMODB_LOCAL_DIR="$STATE/dynamodb-local-$DYNAMODB_LOCAL_VERSION/package/emulator"

ensure_dynamodb_local() {
  command -v java >/dev/null || { echo "DynamoDB Local needs Java 17 (java on PATH)" >&2; return 1; }
  [[ -f "$DYNAMODB_LOCAL_DIR/DynamoDBLocal.jar" ]] && return 0
  command -v npm >/dev/null || { echo "fetching DynamoDB Local needs npm (on PATH)" >&2; return 1; }
  log "fetching DynamoDB Local (npm pack amplify-dynamodb-simulator@$DYNAMODB_LOCAL_VERSION)"
  local dir="$STATE/dynamodb-local-$DYNAMODB_LOCAL_VERSION"
  rm -rf "$dir" && mkdir -p "$dir"
  (cd "$dir" && npm pack --silent "amplify-dynamodb-simulator@$DYNAMODB_LOCAL_VERSION" >/dev/null && tar xzf ./*.tgz)
  [[ -f "$DYNAMODB_LOCAL_DIR/DynamoDBLocal.jar" ]] || { echo "no DynamoDBLocal.jar in $dir" >&2; return 1; }
}

# Starts DynamoDB Local in memory on $1 (one database for every access key and region,
# as moto has); its pid goes to $STATE/dynamodb-local-$1.pid and its log next to it.
start_dynamodb_local() {
  local port="$1"
  ensure_dynamodb_local
  if port_open "$port"; then
    echo "port $port is in use; DynamoDB Local cannot start there" >&2
    return 1
  fi
  (cd "$DYNAMODB_LOCAL_DIR" && exec java -Djava.library.path=./DynamoDBLocal_lib \
    -jar DynamoDBLocal.jar -inMemory -sharedDb -port "$port") \
    >"$STATE/dynamodb-local-$port.log" 2>&1 &
  local pid=$!
  echo "$pid" >"$STATE/dynamodb-local-$port.pid"
  for _ in $(seq 300); do
    port_open "$port" && return 0
    if ! kill -0 "$pid" 2>/dev/null; then
      cat "$STATE/dynamodb-local-$port.log" >&2
      echo "DynamoDB Local exited before opening port $port" >&2
      return 1
    fi
    sleep 0.2
  done
  echo "DynamoDB Local did not start on port $port" >&2
  return 1
}
