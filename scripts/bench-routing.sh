#!/usr/bin/env bash
# Items read per routed task with 10, 100 and 1,000 live agents in the category,
# counted by an SDK interceptor on the router's DynamoDB client. DynamoDB Local serves
# DynamoDB (registering 1,000 agents is quick there), moto SQS.
source "$(dirname "$0")/lib.sh"
ensure_venv

port="$(free_port)"
start_moto "$port"
stop_on_exit "$STATE/moto-$port.pid"
export AWS_ENDPOINT_URL="http://127.0.0.1:$port"
port="$(free_port)"
start_dynamodb_local "$port"
stop_on_exit "$STATE/dynamodb-local-$port.pid"
export AWS_ENDPOINT_URL_DYNAMODB="http://127.0.0.1:$port"
cd "$ROOT"
cargo run --quiet -p aicity-tasks --example routing_reads
