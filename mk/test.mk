# `make test`: every test, in 8 minutes or less from a fresh clone on 2 cores (docs/testing.md has the budget).
#
# After the venv, these run side by side (make -j, each target's output kept together):
#   1. lint;
#   2. the tiers that need only the venv (tests/unit, tests/integration), under pytest-xdist;
#   3. the template checks and the tools the other tiers need (sam build, checkov, the IAM evaluator's and the
#      interop npm packages), then those tiers (template, privilege, interop) under pytest-xdist.
# Then the short soak alone: it measures signing availability in real time, and beside the other tiers its sign
# requests starved (a 5-7 % unavailable rate against its 5 % bound). Then every cell of docs/compatibility.md must
# have been recorded (mk/interop.mk), and the least-privilege matrix decides every call the sessions' local stacks
# recorded. Most tests wait on a local stack's clock, not on a core, so the workers outnumber the cores. Each local
# stack writes its own recording (stack name, process id, sequence), so workers never collide; every server binds
# port 0.
#
# The closing lines: each session's own pytest summary, then one count over all sessions (their JUnit reports)
# and the wall time.
# Workers per session: the venv tiers are the bulk; the tool tiers start later, beside them.
TEST_WORKERS ?= 4
TOOL_TIERS_WORKERS ?= 2
TEST_BUDGET := 480
JUNIT := .artifacts/junit
PYTEST_ALL = JWKS_ROTATOR_RECORD_CALLS=$(CURDIR)/$(RECORDED_CALLS) HYPOTHESIS_PROFILE=ci \
	$(PY) -m pytest -q -p no:cacheprovider --durations=20
VENV_TIERS := tests/unit tests/integration
ALONE_TIERS := tests/soak

.PHONY: test-all test-steps test-tools test-venv-tiers test-tool-tiers test-alone-tiers

test-all:
	@start=$$EPOCHREALTIME; \
	$(MAKE) --no-print-directory test-steps; rc=$$?; \
	if [ -x $(PY) ]; then $(PY) mk/test_summary.py $(JUNIT)/*.xml || rc=1; fi; \
	$(call report_time,make test,$$start,$$rc,$(TEST_BUDGET)); \
	exit $$rc

test-steps: $(STAMP)
	rm -rf $(RECORDED_CALLS) $(JUNIT) $(COMPAT_RESULTS)
	mkdir -p $(RECORDED_CALLS) $(JUNIT)
	$(MAKE) --no-print-directory -j4 --keep-going --output-sync=target test-venv-tiers test-tool-tiers lint
	$(MAKE) --no-print-directory test-alone-tiers
	$(PY) -m tests.interop.compat --check > /dev/null
	$(MAKE) --no-print-directory check-privilege-recorded

test-tools: interop-node privilege-tools check-template

test-venv-tiers: $(STAMP)
	$(PYTEST_ALL) -n $(TEST_WORKERS) --dist loadgroup --junitxml=$(JUNIT)/venv-tiers.xml $(VENV_TIERS)

# Everything under tests/ but the venv tiers and the soak: a new tier directory is never left out.
test-tool-tiers: $(STAMP) test-tools
	$(PYTEST_ALL) -n $(TOOL_TIERS_WORKERS) --dist loadgroup --junitxml=$(JUNIT)/tool-tiers.xml $(foreach t,$(VENV_TIERS) $(ALONE_TIERS),--ignore=$(t)) tests

test-alone-tiers: $(STAMP) test-tools
	$(PYTEST_ALL) --junitxml=$(JUNIT)/alone-tiers.xml $(ALONE_TIERS)
