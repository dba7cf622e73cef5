# End-to-end soak: the local stack under concurrent signing, caching verifiers (PyJWT, jose, Envoy) and injected faults,
# with rotators doubled, crashed, killed and paused. `make soak` runs SOAK_DURATION seconds of traffic per algorithm and writes
# benchmarks/SOAK.md; the short version (tests/soak) runs inside `make test`.
SOAK_DURATION ?= 300
SOAK_ARGS ?=

.PHONY: soak soak-short

# The soak records its functions' AWS calls into a fresh directory, and the least-privilege check decides them.
SOAK_RECORDED_CALLS := .artifacts/soak-recorded-calls

soak: $(STAMP) interop-node privilege-tools
	rm -rf $(SOAK_RECORDED_CALLS)
	JWKS_ROTATOR_RECORD_CALLS=$(CURDIR)/$(SOAK_RECORDED_CALLS) $(PY) -m soak --duration $(SOAK_DURATION) --write benchmarks/SOAK.md $(SOAK_ARGS)
	$(PY) -m tests.privilege.matrix --recorded $(SOAK_RECORDED_CALLS) --require-recorded

# The short soak records into $(RECORDED_CALLS) (emptied first); then the check decides what was recorded.
soak-short: $(STAMP) interop-node privilege-tools
	rm -rf $(RECORDED_CALLS)
	JWKS_ROTATOR_RECORD_CALLS=$(CURDIR)/$(RECORDED_CALLS) $(PY) -m pytest -q -p no:cacheprovider tests/soak
	$(MAKE) --no-print-directory check-privilege-recorded
