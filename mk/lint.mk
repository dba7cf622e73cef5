# make lint: ruff, mypy --strict and the import contracts (pyproject [tool.ruff], [tool.mypy], [tool.importlinter]).
.PHONY: lint lint-ruff lint-types lint-imports

lint: lint-ruff lint-types lint-imports

lint-ruff: $(STAMP)
	$(VENV)/bin/ruff check .

# One mypy run per handler: both are named app.py, and a single run would see two modules called "app".
# Then the operator CLI, the local cloud, the testing kit and the callers' client, and `make settings`' tool, all strict.
lint-types: $(STAMP)
	$(PY) -m mypy layers/jwks_rotator/jwks_rotator
	$(PY) -m mypy functions/sign/app.py
	$(PY) -m mypy functions/rotate/app.py
	MYPYPATH=layers/jwks_rotator:cli:local:testkit:client $(PY) -m mypy cli/jwks_rotator_cli local/jwks_rotator_local testkit/jwks_rotator_testkit client/jwks_rotator_client
	$(PY) -m mypy tools/settings_reference.py

lint-imports: $(STAMP)
	$(VENV)/bin/lint-imports
