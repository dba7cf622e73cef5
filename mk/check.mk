# `make check`: the inner loop, in a minute or less on 2 cores: lint (ruff, mypy --strict from its cache, import
# contracts) beside the fast tier (tests/unit, -m "not slow") under the short Hypothesis profile ("check"), on
# every core; prints its own time. `make test` runs everything. docs/testing.md has the tiers and budgets.
PYTEST_WORKERS ?= 2
CHECK_BUDGET := 60

.PHONY: check check-unit

# Lint and the unit tests side by side (make -j), each with its output kept together; the time is printed
# whether they pass or fail, and make check fails if either does.
check: $(STAMP)
	@start=$$EPOCHREALTIME; \
	$(MAKE) --no-print-directory -j3 --output-sync=target lint-ruff lint-types lint-imports check-unit; rc=$$?; \
	$(call report_time,make check,$$start,$$rc,$(CHECK_BUDGET)); \
	exit $$rc

check-unit: $(STAMP)
	HYPOTHESIS_PROFILE=check $(PY) -m pytest -q -p no:cacheprovider -n $(PYTEST_WORKERS) -m "not slow" tests/unit
