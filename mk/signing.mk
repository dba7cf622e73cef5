# Signing benchmark: the signing path and the warm handler (a warm caller's cached proof, the issuance policy, the audit
# line) as ratios to a hand-rolled compact JWS, the cost of verifying a first proof against a local STS stand-in, cold
# start, and AWS calls and STS replays per 1,000 tokens against a moto server; `make bench` updates the "## Signing"
# section of benchmarks/RESULTS.md.
.PHONY: bench bench-quick

bench: $(STAMP)
	$(PY) benchmarks/bench_signing.py --write

# A shorter run for a quick look; prints only, writes nothing.
bench-quick: $(STAMP)
	$(PY) benchmarks/bench_signing.py --rounds 5 --batch 100 --cold-runs 3 --proof-runs 5
