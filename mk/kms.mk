# Key custody benchmark: secrets-manager against kms side by side (latency on a local moto server, Sign calls per
# token, first token in a fresh process, cost per million tokens from AWS list prices); updates the "## Key custody"
# section of benchmarks/RESULTS.md.
.PHONY: bench-kms

bench-kms: $(STAMP)
	$(PY) benchmarks/bench_kms_custody.py --write
