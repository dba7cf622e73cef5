# Signing benchmark: the signing path and the warm handler (a warm caller's cached proof, the issuance policy, the audit
# line) as ratios to a hand-rolled compact JWS, the cost of verifying a first proof against a local STS stand-in, and AWS
# calls and STS replays per 1,000 tokens through the Parameters and Secrets extension stand-in (benchmarks/bench_signing.py);
# then cold start as Lambda sees it (INIT, first and warm invocations, CPU and wall; first-token estimates per memory
# size) in fresh processes, python3.12 (the `make build` artifact) and the machine's python3, before (main compiled
# the same way) and after side by side (benchmarks/bench_cold_start.py).
# `make bench` updates the "## Signing" and "## Cold start" sections of benchmarks/RESULTS.md.
.PHONY: bench bench-quick

# "before": a revision's sign function and layer package (BENCH_BEFORE, default main) compiled as `make build` compiles
# them and run beside this tree's build under python3.12, with the same third-party packages, stand-ins and rounds.
BENCH_BEFORE ?= main

bench: $(STAMP) build
	@echo "load average before the run: $$(cut -d' ' -f1-3 /proc/loadavg) (on a loaded machine, run again)"
	$(PY) benchmarks/bench_signing.py --write
	$(PY) benchmarks/bench_cold_start.py --write --before "$(BENCH_BEFORE)"

# A shorter run for a quick look; prints only, writes nothing.
bench-quick: $(STAMP) build
	$(PY) benchmarks/bench_signing.py --rounds 5 --batch 100 --proof-runs 5
	$(PY) benchmarks/bench_cold_start.py --runs 3 --breakdown-runs 1 --before "$(BENCH_BEFORE)"
