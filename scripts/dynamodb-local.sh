#!/usr/bin/env bash
# Runs the store conformance tests against DynamoDB Local: AWS's own engine, the second
# conformance target for conditional writes and transactions. Its jar ships inside the
# npm package amplify-dynamodb-simulator; it runs on the machine's Java 17.
source "$(dirname "$0")/lib.sh"

version=2.9.30
dir="$STATE/dynamodb-local-$version"
if [[ ! -f "$dir/package/emulator/DynamoDBLocal.jar" ]]; then
  log "fetching DynamoDB Local (npm pack amplify-dynamodb-simulator@$version)"
  mkdir -p "$dir"
  (cd "$dir" && npm pack --silent "amplify-dynamodb-simulator@$version" >/dev/null && tar xzf ./*.tgz)
fi
command -v java >/dev/null || { echo "DynamoDB Local needs Java 17 (java on PATH)" >&2; exit 1; }

port="$(free_port)"
log "starting DynamoDB Local on 127.0.0.1:$port"
(cd "$dir/package/emulator" && exec java -Djava.library.path=./DynamoDBLocal_lib \
  -jar DynamoDBLocal.jar -inMemory -port "$port") >"$STATE/dynamodb-local.log" 2>&1 &
echo $! >"$STATE/dynamodb-local.pid"
trap 'stop_pidfile "$STATE/dynamodb-local.pid"' EXIT
wait_for_port "$port" "DynamoDB Local" 150

cd "$ROOT"
AWS_ENDPOINT_URL="http://127.0.0.1:$port" cargo nextest run -p aicity-store --test conformance "$@"
