# Signing benchmark (issue 3): ratios to a hand-rolled compact JWS; updates the "## Signing" section of benchmarks/RESULTS.md.
.PHONY: bench bench-quick

bench: $(STAMP)
	$(PY) benchmarks/bench_signing.py --write

# A shorter run for a quick look; prints only, writes nothing.
bench-quick: $(STAMP)
	$(PY) benchmarks/bench_signing.py --rounds 5 --batch 100 --cold-runs 3
