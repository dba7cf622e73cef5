# Signing benchmark: the signing path and the warm handler as ratios to a hand-rolled compact JWS, cold start and AWS calls
# per 1,000 tokens against a moto server; `make bench` updates the "## Signing" section of benchmarks/RESULTS.md.
.PHONY: bench bench-quick

bench: $(STAMP)
	$(PY) benchmarks/bench_signing.py --write

# A shorter run for a quick look; prints only, writes nothing.
bench-quick: $(STAMP)
	$(PY) benchmarks/bench_signing.py --rounds 5 --batch 100 --cold-runs 3
