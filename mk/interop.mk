# Interop: tokens from the sign handler verified by PyJWT, jwcrypto, node's jose and jwks-rsa, and Envoy (jwt_authn), and proofs from the Node client example (examples/node-sign-client) accepted (tests/interop).
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

# The compatibility matrix (docs/compatibility.md): the interop tests that decide its cells record what they saw in
# .artifacts/compat/ (emptied first); the page is written only when every cell was recorded as tests/interop/compat.py
# expects. A test (tests/interop/test_compat_page.py) fails when the committed page differs from those expectations.
COMPAT_RESULTS := .artifacts/compat

.PHONY: compatibility

compatibility: $(STAMP) $(INTEROP_NODE_STAMP)
	rm -rf $(COMPAT_RESULTS)
	$(PY) -m pytest -q -p no:cacheprovider tests/interop/test_bad_tokens.py tests/interop/test_rotation.py tests/interop/test_gateways.py
	$(PY) -m tests.interop.compat --check --write docs/compatibility.md
