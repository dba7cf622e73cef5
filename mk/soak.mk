# End-to-end soak: the local stack under concurrent signing, caching verifiers (PyJWT, jose) and injected faults,
# with rotators doubled, crashed, killed and paused. `make soak` runs SOAK_DURATION seconds of traffic per algorithm and writes
# benchmarks/SOAK.md; the short version (tests/soak) runs inside `make test`.
SOAK_DURATION ?= 300
SOAK_ARGS ?=

.PHONY: soak soak-short

soak: $(STAMP) interop-node
	$(PY) -m soak --duration $(SOAK_DURATION) --write benchmarks/SOAK.md $(SOAK_ARGS)

soak-short: $(STAMP) interop-node
	$(PY) -m pytest -q -p no:cacheprovider tests/soak
