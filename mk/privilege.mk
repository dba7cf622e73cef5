# Least privilege, call by call: `make check-privilege` records every AWS call the two functions' code makes
# under its own role (tests/privilege/scenario.py), decides each, and a written list of calls that must be
# denied, against the translated template's policies with the IAM evaluator in tools/iam-eval (Node,
# @cloud-copilot/iam-simulate, development only: tools/iam-eval/README.md), and prints the matrix.
IAM_EVAL_DIR := tools/iam-eval
IAM_EVAL_STAMP := $(IAM_EVAL_DIR)/node_modules/.iam-eval-installed
# The translated template; its rule is in mk/template.mk (named here by path: that file is read after this one).
PRIVILEGE_TEMPLATE := .aws-sam/checks/template.translated.json

.PHONY: check-privilege iam-eval-node

# npm ci from the committed lockfile, only when node_modules is missing or older than the lockfile.
$(IAM_EVAL_STAMP): $(IAM_EVAL_DIR)/package-lock.json $(IAM_EVAL_DIR)/package.json
	cd $(IAM_EVAL_DIR) && npm ci --no-audit --no-fund
	touch $@

iam-eval-node: $(IAM_EVAL_STAMP)

check-privilege: $(STAMP) $(IAM_EVAL_STAMP) $(PRIVILEGE_TEMPLATE)
	$(PY) -m tests.privilege.matrix
