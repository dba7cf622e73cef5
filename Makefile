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

-include mk/*.mk

# Every test: lint (ruff, mypy --strict, import contracts), template checks (cfn-lint, sam validate --lint,
# sam build, checkov), then unit, integration (moto server over HTTP), interop (PyJWT, jwcrypto, Node jose and jwks-rsa, Envoy),
# privilege and the short soak, every local stack among them recording its functions' AWS calls
# (tests/conftest.py); then every cell of docs/compatibility.md must have been recorded by an interop test as the
# page states it (mk/interop.mk), and the least-privilege matrix (mk/privilege.mk) decides the built-in lifecycle and
# everything recorded.
test: $(STAMP) lint interop-node check-template privilege-tools
	rm -rf $(RECORDED_CALLS) $(COMPAT_RESULTS)
	JWKS_ROTATOR_RECORD_CALLS=$(CURDIR)/$(RECORDED_CALLS) $(PY) -m pytest -q -p no:cacheprovider tests
	$(PY) -m tests.interop.compat --check > /dev/null
	$(MAKE) --no-print-directory check-privilege-recorded

clean: clean-template
	rm -rf $(VENV) .venv-sam .venv-checkov .aws-sam .pytest_cache .hypothesis
