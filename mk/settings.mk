# `make settings`: the settings' template parameters, parameter groups and environment entries (the marked regions
# of template.yaml) and docs/settings.md, written from their declarations in core/settings.py
# (tools/settings_reference.py). tests/template/test_settings_generated.py fails on any drift.
.PHONY: settings check-settings

settings: $(STAMP)
	$(PY) -m tools.settings_reference

check-settings: $(STAMP)
	$(PY) -m tools.settings_reference --check
