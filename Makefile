# Two commands a new machine needs: `make demo` and `make test`. Everything installs into .venv/.
VENV := .venv
PY := $(VENV)/bin/python
BIN := $(VENV)/bin

.PHONY: setup models demo test check serve clean

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	bash scripts/system-deps.sh
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check --upgrade pip
	$(PY) -m pip install -q --disable-pip-version-check -e '.[test]'
	touch $@

models: setup
	$(BIN)/medpay-provision all

demo: models
	$(BIN)/medpay demo

check:
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/python -m pytest -q

test: models check

serve: models
	$(BIN)/medpay serve

clean:
	rm -rf $(VENV) models/*.onnx models/cache
