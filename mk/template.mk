# SAM template checks: `make check-template` (cfn-lint, sam validate --lint, the layer's hash-pinned
# requirements, sam build, checkov) and `make test-template` (pytest over the template and events/).
# `make lock-layer` re-resolves the layer's requirements (requirements/layer.in) with hashes.
#
# The tools live in their own venvs, made from the machine's python3: aws-sam-cli and cfn-lint in
# .venv-sam, checkov in .venv-checkov (their pins conflict). Each step leaves a stamp under
# .aws-sam/checks/ and runs again only when its inputs change.

TOOLS_PYTHON ?= python3
SAM_VENV := .venv-sam
CHECKOV_VENV := .venv-checkov
SAM_TOOLS := $(SAM_VENV)/.installed
CHECKOV_TOOLS := $(CHECKOV_VENV)/.installed
CHECKS := .aws-sam/checks
TEMPLATE := template.yaml
SAM_ENV := SAM_CLI_TELEMETRY=0 AWS_DEFAULT_REGION=$${AWS_DEFAULT_REGION:-us-east-1}
BUILD_INPUTS := $(TEMPLATE) $(shell find layers/jwks_rotator functions -type f -not -path '*/__pycache__/*' -not -name '*.pyc' 2>/dev/null)

# A python3.12 that really runs (a pyenv shim on PATH may not), for `sam build` (runtime python3.12).
PYTHON312 = $(shell for c in "$$(command -v python3.12 2>/dev/null)" "$$(pyenv root 2>/dev/null)"/versions/3.12*/bin/python3.12 "$$HOME"/.pyenv/versions/3.12*/bin/python3.12 /usr/local/bin/python3.12 /usr/bin/python3.12; do \
	[ -n "$$c" ] && [ -x "$$c" ] && "$$c" -c 'import sys; assert sys.version_info[:2] == (3, 12)' >/dev/null 2>&1 && { echo "$$c"; break; }; done)

.PHONY: check-template test-template template-tools clean-template lock-layer build

template-tools: $(SAM_TOOLS) $(CHECKOV_TOOLS)

$(SAM_TOOLS): requirements/tools.txt
	test -x $(SAM_VENV)/bin/python || $(TOOLS_PYTHON) -m venv $(SAM_VENV)
	$(SAM_VENV)/bin/python -m pip install -q --upgrade pip 2>&1 | grep -v '^WARNING: Location' || true
	$(SAM_VENV)/bin/python -m pip install -q -r requirements/tools.txt 2>&1 | grep -v '^WARNING: Location'; test $${PIPESTATUS[0]} -eq 0
	touch $@

$(CHECKOV_TOOLS): requirements/tools-checkov.txt
	test -x $(CHECKOV_VENV)/bin/python || $(TOOLS_PYTHON) -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/python -m pip install -q --upgrade pip 2>&1 | grep -v '^WARNING: Location' || true
	$(CHECKOV_VENV)/bin/python -m pip install -q -r requirements/tools-checkov.txt 2>&1 | grep -v '^WARNING: Location'; test $${PIPESTATUS[0]} -eq 0
	touch $@

$(CHECKS)/cfn-lint: $(TEMPLATE) $(SAM_TOOLS)
	@echo "== cfn-lint $(TEMPLATE)"
	$(SAM_VENV)/bin/cfn-lint $(TEMPLATE)
	@mkdir -p $(CHECKS) && touch $@

$(CHECKS)/sam-validate: $(TEMPLATE) $(SAM_TOOLS)
	@echo "== sam validate --lint"
	$(SAM_ENV) $(SAM_VENV)/bin/sam validate --lint --template-file $(TEMPLATE)
	@mkdir -p $(CHECKS) && touch $@

$(CHECKS)/sam-build: $(BUILD_INPUTS) $(SAM_TOOLS)
	@echo "== sam build"
	@py312="$(PYTHON312)"; \
	if [ -z "$$py312" ]; then \
		echo "check-template: sam build needs a working python3.12 (the Lambda runtime)." >&2; \
		echo "  Looked for python3.12 on PATH and under \$$(pyenv root)/versions/3.12*/bin. Install one, e.g. 'pyenv install 3.12'." >&2; \
		exit 1; \
	fi; \
	echo "   using $$py312"; \
	PATH="$$(dirname "$$py312"):$$PATH" $(SAM_ENV) $(SAM_VENV)/bin/sam build --template-file $(TEMPLATE) --cached; \
	echo "== the sign function's YAML policy files as JSON (same document and digest: no PyYAML import at cold start)"; \
	PYTHONPATH=.aws-sam/build/SharedLayer/python "$$py312" -B mk/policy_as_json.py \
		$$(ls .aws-sam/build/SignFunction/*.yaml .aws-sam/build/SignFunction/*.yml 2>/dev/null) && \
	echo "== leave the local stack's marker out (a deployed function honours no STS or policy override)" && \
	rm -f .aws-sam/build/SignFunction/.jwks-rotator-local .aws-sam/build/RotateFunction/.jwks-rotator-local && \
	echo "== compile the built layer and functions for python3.12 (unchecked-hash .pyc)" && \
	"$$py312" -m compileall -q -j0 --invalidation-mode unchecked-hash $(BUILT_CODE)
	@mkdir -p $(CHECKS) && touch $@

# `make build`: sam build, then every module of the built layer and functions compiled by the runtime's interpreter
# into __pycache__/*.cpython-312.pyc with --invalidation-mode unchecked-hash. Lambda's code directory is read-only, so
# a build without .pyc recompiles every module at every cold start (the project's ~30 ms, and its dependencies'); and
# the deployment zip does not keep the timestamps a default (timestamp) .pyc is checked against, so only a
# hash-based, unchecked .pyc is used as it is. A post-build step rather than a `BuildMethod: makefile`: sam's Python
# builder keeps doing the hash-checked, platform-targeted install of the layer's requirements. Deploy with
# `make build && sam deploy` (a bare `sam build` leaves the .pyc out).
BUILT_CODE := .aws-sam/build/SharedLayer .aws-sam/build/SignFunction .aws-sam/build/RotateFunction

build: $(CHECKS)/sam-build

# The layer's requirements: every transitive dependency pinned (==) with the sha256 of every file PyPI
# holds for that version, so `sam build` (pip download -r, hash-checking mode) installs only those files.
# Resolved by pip-compile under python3.12 (the runtime's markers) into layers/jwks_rotator/requirements.txt.
LAYER_IN := requirements/layer.in
LAYER_REQUIREMENTS := layers/jwks_rotator/requirements.txt
LOCK_VENV := .venv-lock
LOCK_TOOLS := pip==26.3 pip-tools==7.6.2
# The platforms the python3.12 x86_64 runtime (Amazon Linux 2023, glibc 2.34) loads, as sam build lists them.
LAMBDA_PLATFORMS := manylinux_2_34_x86_64 manylinux_2_28_x86_64 manylinux_2_17_x86_64 manylinux2014_x86_64

lock-layer: $(LAYER_IN)
	@py312="$(PYTHON312)"; [ -n "$$py312" ] || { echo "lock-layer: needs a working python3.12 (the Lambda runtime's markers)" >&2; exit 1; }; \
	test -x $(LOCK_VENV)/bin/python || "$$py312" -m venv $(LOCK_VENV)
	$(LOCK_VENV)/bin/python -m pip install -q $(LOCK_TOOLS) 2>&1 | grep -v '^WARNING: Location'; test $${PIPESTATUS[0]} -eq 0
	CUSTOM_COMPILE_COMMAND="make lock-layer" $(LOCK_VENV)/bin/pip-compile --quiet --generate-hashes \
		--allow-unsafe --strip-extras --no-emit-index-url --no-emit-find-links \
		--output-file $(LAYER_REQUIREMENTS) $(LAYER_IN) 2>&1 | grep -v '^WARNING: Location'; test $${PIPESTATUS[0]} -eq 0

# Proves the pinned set installs for Lambda exactly as written: --require-hashes refuses any requirement
# without a hash or an == pin and any dependency missing from the file; binary wheels only, for the runtime.
$(CHECKS)/layer-requirements: $(LAYER_REQUIREMENTS) $(SAM_TOOLS)
	@echo "== layer requirements: hash-pinned, complete, installable for python3.12 x86_64"
	$(SAM_VENV)/bin/python -m pip install --dry-run --quiet --require-hashes --only-binary=:all: \
		$(foreach p,$(LAMBDA_PLATFORMS),--platform $(p)) --implementation cp --python-version 3.12 \
		--target $(CHECKS)/layer-dry-run -r $(LAYER_REQUIREMENTS) 2>&1 | grep -v '^WARNING: Location'; test $${PIPESTATUS[0]} -eq 0
	@mkdir -p $(CHECKS) && touch $@

# checkov twice: on the SAM template as written, and on its offline translation to plain
# CloudFormation, so the roles and permissions SAM generates meet the IAM checks too.
TRANSLATED := .aws-sam/checks/template.translated.json

$(TRANSLATED): $(TEMPLATE) local/jwks_rotator_local/sam_template.py $(SAM_TOOLS)
	@mkdir -p $(CHECKS)
	$(SAM_ENV) $(SAM_VENV)/bin/python local/jwks_rotator_local/sam_template.py $(TEMPLATE) $@

$(CHECKS)/checkov: $(TEMPLATE) $(TRANSLATED) $(CHECKOV_TOOLS)
	@echo "== checkov (skips are justified in $(TEMPLATE) Metadata)"
	$(CHECKOV_VENV)/bin/checkov -f $(TEMPLATE) --framework cloudformation --quiet --compact --skip-download
	$(CHECKOV_VENV)/bin/checkov -f $(TRANSLATED) --framework cloudformation --quiet --compact --skip-download
	@mkdir -p $(CHECKS) && touch $@

check-template: $(CHECKS)/cfn-lint $(CHECKS)/sam-validate $(CHECKS)/layer-requirements $(CHECKS)/sam-build $(CHECKS)/checkov
	@echo "check-template: cfn-lint, sam validate --lint, layer requirements, sam build and checkov passed"

test-template: $(STAMP)
	$(PY) -m pytest -q tests/template

clean-template:
	rm -rf $(SAM_VENV) $(CHECKOV_VENV) $(LOCK_VENV) .aws-sam
