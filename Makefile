# jwks-rotator: the two commands are `make run` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: test venv unit integration clean

$(STAMP): requirements/dev.txt pyproject.toml local/pyproject.toml
	@echo "building the virtual environment $(VENV) (the project, the CLI, moto and the test tools: about a minute the first time)..."
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements/dev.txt
	touch $(STAMP)

venv: $(STAMP)

unit: $(STAMP)
	$(PY) -m pytest -q tests/unit

integration: $(STAMP)
	$(PY) -m pytest -q tests/integration

# $(call report_time,NAME,START,RC,BUDGET): one closing line with the result, the wall time since START
# ($$EPOCHREALTIME) against the budget in seconds, and the load average (timings on a shared machine are noisy).
report_time = awk -v s="$(2)" -v e="$$EPOCHREALTIME" -v rc="$(3)" -v b="$(4)" -v l="$$(cut -d' ' -f1-3 /proc/loadavg)" \
	'BEGIN { printf "%s: %s in %.1f s (budget %d s; load average %s)\n", "$(1)", (rc == 0 ? "passed" : "FAILED"), e - s, b, l }'

-include mk/*.mk

# Every test: lint (ruff, mypy --strict, import contracts), template checks (cfn-lint, sam validate --lint,
# sam build, checkov), then unit, integration (moto server over HTTP), interop (PyJWT, jwcrypto, Node jose and jwks-rsa, Envoy),
# privilege and the short soak, every local stack among them recording its functions' AWS calls
# (tests/conftest.py); then every cell of docs/compatibility.md must have been recorded by an interop test as the
# page states it (mk/interop.mk), and the least-privilege matrix (mk/privilege.mk) decides the built-in lifecycle and
# everything recorded. The steps and their budget: mk/test.mk and docs/testing.md.
test: test-all

clean: clean-template
	rm -rf $(VENV) .venv-sam .venv-checkov .aws-sam .pytest_cache .hypothesis .mypy_cache .artifacts
