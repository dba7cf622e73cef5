# Least privilege, call by call: `make check-privilege` records every AWS call the two functions' code makes
# under its own role (tests/privilege/scenario.py), decides each, and a written list of calls that must be
# denied, against the translated template's policies with the IAM evaluator in tools/iam-eval (Node,
# @cloud-copilot/iam-simulate, development only: tools/iam-eval/README.md), and prints the matrix.
# It also decides every call the local stacks recorded into $(RECORDED_CALLS) (the test session and the
# short soak record there: tests/conftest.py), each file against its own deployment; `make test` runs it
# after pytest with --require-recorded, so a call the integration tests or the soak made that the template
# does not allow fails the build. `make check-privilege` alone uses whatever the last test run recorded.
IAM_EVAL_DIR := tools/iam-eval
IAM_EVAL_STAMP := $(IAM_EVAL_DIR)/node_modules/.iam-eval-installed
# The translated template; its rule is in mk/template.mk (named here by path: that file is read after this one).
PRIVILEGE_TEMPLATE := .aws-sam/checks/template.translated.json

RECORDED_CALLS := .artifacts/recorded-calls

.PHONY: check-privilege check-privilege-recorded iam-eval-node privilege-tools

# npm ci from the committed lockfile, only when node_modules is missing or older than the lockfile.
$(IAM_EVAL_STAMP): $(IAM_EVAL_DIR)/package-lock.json $(IAM_EVAL_DIR)/package.json
	cd $(IAM_EVAL_DIR) && npm ci --no-audit --no-fund
	touch $@

iam-eval-node: $(IAM_EVAL_STAMP)

# What the evaluation needs (also before pytest: tests/privilege uses them).
privilege-tools: $(STAMP) $(IAM_EVAL_STAMP) $(PRIVILEGE_TEMPLATE)

check-privilege: privilege-tools
	$(PY) -m tests.privilege.matrix $(if $(wildcard $(RECORDED_CALLS)/*.json),--recorded $(RECORDED_CALLS))

# After a test session: the recordings must be there (an empty directory would pass vacuously).
check-privilege-recorded: privilege-tools
	$(PY) -m tests.privilege.matrix --recorded $(RECORDED_CALLS) --require-recorded
