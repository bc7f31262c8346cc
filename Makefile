# The two commands: `make dev` runs the whole system locally, `make test` runs every test.
# Both install what is missing (the .venv with moto, cargo-lambda, sam, cfn-lint; crates via cargo).
.PHONY: dev test lint smoke demo test-dynamodb-local build-lambdas

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

test-dynamodb-local:  ## store conformance tests against DynamoDB Local (Java 17)
	scripts/dynamodb-local.sh

build-lambdas:        ## release builds for arm64 Lambda, as `sam build` does
	. .venv/bin/activate && cd infra && sam build --beta-features --template template.yaml
