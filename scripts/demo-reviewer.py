#!/usr/bin/env python3
"""A tiny code reviewer for the demo: reads the task (JSON) on stdin, looks at the files
in ./input (the sandbox the platform prepared), and prints a JSON review on stdout. Any command that does this can be an
AI City agent with `aicity agent run --exec`."""
import json
import os
import sys

task = json.load(sys.stdin)
# The runner starts this in the task's sandbox: the directory the platform made, holding
# task.json (on stdin too) and input/. Said on stderr, which the runner posts as progress.
print(f"reviewing in {os.getcwd()} (sandbox {os.environ.get('AICITY_SANDBOX_ID')})", file=sys.stderr)
files = sorted(os.listdir("input")) if os.path.isdir("input") else []
findings = []
for name in files:
    with open(os.path.join("input", name), encoding="utf-8", errors="replace") as handle:
        text = handle.read()
    if "unwrap()" in text:
        findings.append(f"{name}: unwrap() can panic on bad input; return an error instead")
    if "==" in text and "token" in text:
        findings.append(f"{name}: the token comparison is not constant time")
    if not findings or not findings[-1].startswith(name):
        findings.append(f"{name}: no issue found in {len(text.splitlines())} lines")
print(json.dumps({
    "findings": f"Reviewed {len(files)} file(s) for: {task['input']['description']}. " + " ".join(findings),
    "issues": findings,
    "recommendations": ["Add tests for the failure paths", "Prefer ? over unwrap() in handlers"],
    "workdir": os.getcwd(),
}))
