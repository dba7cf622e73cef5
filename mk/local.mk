# The local cloud and the operator CLI. `make run` starts the whole system in one process:
# `jwks-rotator local` comes from the local cloud distribution (local/, jwks-rotator-local),
# which `make venv` installs beside the project.
LOCAL_PORT ?= 8080
LOCAL_ARGS ?= --rotation-period 20s --publish-lead 5s --max-token-ttl 10s --default-token-ttl 5s \
	--jwks-max-age 2s --schedule 1s --signer-cache-ttl 1s --clock-skew-leeway 1s

.PHONY: run test-local

# Settings that rotate visibly within a minute: a key activates every 20 s, retired keys go 12 s later.
# ARGS adds or overrides options: make run ARGS="--port 0 --moto-port 0".
run: $(STAMP)
	$(PY) -m jwks_rotator_cli.main local --port $(LOCAL_PORT) $(LOCAL_ARGS) $(ARGS)

# The local cloud's and the CLI's own integration tests.
test-local: $(STAMP)
	$(PY) -m pytest -q tests/integration/test_local_stack.py tests/integration/test_local_stack_endpoint.py \
		tests/integration/test_local_edge.py tests/integration/test_local_lambda_api.py \
		tests/integration/test_cli.py tests/integration/test_cli_process.py tests/integration/test_cli_stack.py
