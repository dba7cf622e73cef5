# Signing benchmark: the signing path and the warm handler (a warm caller's cached proof, the issuance policy, the audit
# line) as ratios to a hand-rolled compact JWS, the cost of verifying a first proof against a local STS stand-in, and AWS
# calls and STS replays per 1,000 tokens through the Parameters and Secrets extension stand-in (benchmarks/bench_signing.py);
# then cold start in fresh processes, python3.12 (the `make build` artifact) and the machine's python3 side by side,
# before (main as it ships) and after, with the import-time breakdown (benchmarks/bench_cold_start.py).
# `make bench` updates the "## Signing" and "## Cold start" sections of benchmarks/RESULTS.md.
.PHONY: bench bench-quick

BENCH_BEFORE ?= main
# boto3 for python3.12, as the Lambda runtime provides it, for "before" (main reads with boto3) under python3.12.
BENCH_BOTO3_312 := .aws-sam/bench-boto3-312
BOTO3_VERSION = $(shell sed -n 's/^boto3==//p' requirements/dev.txt)

$(BENCH_BOTO3_312)/.installed: requirements/dev.txt
	@py312="$(PYTHON312)"; [ -n "$$py312" ] || { echo "bench: needs a working python3.12" >&2; exit 1; }; \
	"$$py312" -m pip install -q --target $(BENCH_BOTO3_312) boto3==$(BOTO3_VERSION) 2>&1 | grep -v '^WARNING'; test $${PIPESTATUS[0]} -eq 0
	touch $@

bench: $(STAMP) build $(BENCH_BOTO3_312)/.installed
	$(PY) benchmarks/bench_signing.py --write
	$(PY) benchmarks/bench_cold_start.py --write --before "$(BENCH_BEFORE)" --boto3-312 $(BENCH_BOTO3_312)

# A shorter run for a quick look; prints only, writes nothing.
bench-quick: $(STAMP) build
	$(PY) benchmarks/bench_signing.py --rounds 5 --batch 100 --proof-runs 5
	$(PY) benchmarks/bench_cold_start.py --runs 3 --breakdown-runs 1 --before ""
