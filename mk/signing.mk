# Signing benchmark: the signing path and the warm handler (a warm caller's cached proof, the issuance policy, the audit
# line) as ratios to a hand-rolled compact JWS, the cost of verifying a first proof against a local STS stand-in, and AWS
# calls and STS replays per 1,000 tokens through the Parameters and Secrets extension stand-in (benchmarks/bench_signing.py);
# then cold start in fresh processes, python3.12 (the `make build` artifact) and the machine's python3 side by side,
# before (main as it ships) and after, with the import-time breakdown (benchmarks/bench_cold_start.py).
# `make bench` updates the "## Signing" and "## Cold start" sections of benchmarks/RESULTS.md.
.PHONY: bench bench-quick

# "before" from a revision's source with boto3 (BENCH_BEFORE=REF: a revision from before the lean sign path; main now
# ships the lean path, which that mode cannot run), and/or another tree's `make build` output measured exactly as this
# tree's (BENCH_BEFORE_BUILD=/path/to/.aws-sam/build, e.g. of a `git worktree` of main).
BENCH_BEFORE ?=
BENCH_BEFORE_BUILD ?=
# boto3 for python3.12, as the Lambda runtime provides it, for "before" (main reads with boto3) under python3.12.
BENCH_BOTO3_312 := .aws-sam/bench-boto3-312
BOTO3_VERSION = $(shell sed -n 's/^boto3==//p' requirements/dev.txt)

$(BENCH_BOTO3_312)/.installed: requirements/dev.txt
	@py312="$(PYTHON312)"; [ -n "$$py312" ] || { echo "bench: needs a working python3.12" >&2; exit 1; }; \
	"$$py312" -m pip install -q --target $(BENCH_BOTO3_312) boto3==$(BOTO3_VERSION) 2>&1 | grep -v '^WARNING'; test $${PIPESTATUS[0]} -eq 0
	touch $@

bench: $(STAMP) build $(BENCH_BOTO3_312)/.installed
	$(PY) benchmarks/bench_signing.py --write
	$(PY) benchmarks/bench_cold_start.py --write --before "$(BENCH_BEFORE)" --boto3-312 $(BENCH_BOTO3_312) \
		$(if $(BENCH_BEFORE_BUILD),--before-build $(BENCH_BEFORE_BUILD))

# A shorter run for a quick look; prints only, writes nothing.
bench-quick: $(STAMP) build
	$(PY) benchmarks/bench_signing.py --rounds 5 --batch 100 --proof-runs 5
	$(PY) benchmarks/bench_cold_start.py --runs 3 --breakdown-runs 1 --before ""
