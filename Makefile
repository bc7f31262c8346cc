# The two commands: `make dev` runs the whole system locally, `make test` runs every test.
# Both install what is missing (the .venv with moto, cargo-lambda, sam, cfn-lint; crates via cargo).
# `make dev DYNAMODB=local` / `make test DYNAMODB=local`: DynamoDB on DynamoDB Local
# (AWS's own engine, Java 17) while moto keeps serving SQS; the default is DYNAMODB=moto.
.PHONY: dev test lint smoke demo test-dynamodb-local build-lambdas fuzz bench bench-routing api-check
export DYNAMODB

dev:                  ## emulator + functions (cargo lambda watch) + HTTP API on :4000, pollers, schedules
	scripts/dev.sh

test:                 ## unit, property and emulator tests, template lint
	scripts/test.sh

lint:                 ## rustfmt, clippy (warnings are errors), template lint
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets -- -D warnings
	scripts/lint-template.sh

demo:                 ## with `make dev` running: two owners, two agents, a reviewed task, balances (uses the aicity CLI)
	scripts/demo.sh

smoke:                ## starts `make dev`, checks the health route and a probe through :4000, stops
	scripts/smoke.sh

api-check:            ## starts `make dev`, runs schemathesis over every operation of /api/v1/openapi.json and checks /api/v1/docs in headless Chromium
	scripts/api-check.sh

test-dynamodb-local:  ## store conformance, lifecycle and money tests on DynamoDB Local (Java 17), SQS on moto
	scripts/dynamodb-local.sh

build-lambdas:        ## release builds for arm64 Lambda, as `sam build` does
	. .venv/bin/activate && cd infra && sam build --beta-features --template template.yaml

fuzz:                 ## the randomized auditor on DynamoDB Local: AUDITOR_OPS (default 25,000) × AUDITOR_WORKERS (4), seed AUDITOR_SEED
	scripts/fuzz.sh

bench:                ## cold start and zipped size vs hello-world, cost per task lifecycle ($, WCU, RCU, SQS), handler CPU, throughput at 1/10/40, one owner's pool under load (docs/performance.md)
	scripts/bench.sh

bench-routing:        ## items read per routed task with 10, 100 and 1,000 agents in the category
	scripts/bench-routing.sh
