# End-to-end soak: the local stack under concurrent signing, caching verifiers (PyJWT, jose, Envoy) and injected faults,
# with rotators doubled, crashed, killed and paused. `make soak` runs SOAK_DURATION seconds of traffic per algorithm and writes
# benchmarks/SOAK.md; then the soak in two regions (outages of each region, rotate-now, a revocation, replica lag) runs
# SOAK_REGIONS_DURATION seconds per algorithm and writes benchmarks/SOAK-REGIONS.md. The short versions (tests/soak) run
# inside `make test`.
SOAK_DURATION ?= 300
SOAK_ARGS ?=
SOAK_REGIONS ?= us-east-1,eu-west-1
SOAK_REGIONS_DURATION ?= 300
SOAK_REGIONS_ARGS ?= --algorithms ES256

.PHONY: soak soak-short

# The soak records its functions' AWS calls into a fresh directory, and the least-privilege check decides them.
SOAK_RECORDED_CALLS := .artifacts/soak-recorded-calls

soak: $(STAMP) interop-node privilege-tools
	rm -rf $(SOAK_RECORDED_CALLS)
	JWKS_ROTATOR_RECORD_CALLS=$(CURDIR)/$(SOAK_RECORDED_CALLS) $(PY) -m soak --duration $(SOAK_DURATION) --write benchmarks/SOAK.md $(SOAK_ARGS)
	JWKS_ROTATOR_RECORD_CALLS=$(CURDIR)/$(SOAK_RECORDED_CALLS) $(PY) -m soak --regions $(SOAK_REGIONS) \
		--duration $(SOAK_REGIONS_DURATION) --write benchmarks/SOAK-REGIONS.md $(SOAK_REGIONS_ARGS)
	$(PY) -m tests.privilege.matrix --recorded $(SOAK_RECORDED_CALLS) --require-recorded

# The short soak records into $(RECORDED_CALLS) (emptied first); then the check decides what was recorded.
soak-short: $(STAMP) interop-node privilege-tools
	rm -rf $(RECORDED_CALLS)
	JWKS_ROTATOR_RECORD_CALLS=$(CURDIR)/$(RECORDED_CALLS) $(PY) -m pytest -q -p no:cacheprovider tests/soak
	$(MAKE) --no-print-directory check-privilege-recorded
