#!/usr/bin/env bash
# cfn-lint and `sam validate --lint` on the SAM template.
source "$(dirname "$0")/lib.sh"
ensure_venv
"$VENV/bin/cfn-lint" "$ROOT/infra/template.yaml"
"$VENV/bin/sam" validate --lint --template "$ROOT/infra/template.yaml"
