# Interop: tokens from the sign handler verified by PyJWT, jwcrypto and node's jose, and proofs from the Node client example (examples/node-sign-client) accepted (tests/interop).
INTEROP_NODE_DIR := tests/interop/node
INTEROP_NODE_STAMP := $(INTEROP_NODE_DIR)/node_modules/.interop-installed

.PHONY: interop interop-node

# npm ci from the committed lockfile, only when node_modules is missing or older than the lockfile.
$(INTEROP_NODE_STAMP): $(INTEROP_NODE_DIR)/package-lock.json $(INTEROP_NODE_DIR)/package.json
	cd $(INTEROP_NODE_DIR) && npm ci --no-audit --no-fund
	touch $@

interop-node: $(INTEROP_NODE_STAMP)

interop: $(STAMP) $(INTEROP_NODE_STAMP)
	$(PY) -m pytest -q tests/interop
