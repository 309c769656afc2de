# Two commands a new machine needs: `make demo` and `make test`. Everything installs into .venv/.
VENV := .venv
PY := $(VENV)/bin/python
BIN := $(VENV)/bin

.PHONY: setup models demo test test-deps check serve kiosk clean bench bench-deps lock

# The settlement engine runs compiled by mypyc (setup.py); MEDPAY_PURE_PYTHON=1 installs it interpreted.
BUILD := $(if $(filter-out 0,$(MEDPAY_PURE_PYTHON)),pure,compiled)
SETTLEMENT := $(wildcard terminal/settlement/*.py)

setup: $(VENV)/.project-$(BUILD)

# Every third-party package comes from requirements.lock, pinned with its sha256 (pip refuses any other
# file); setuptools and mypy (the build's tools) come from it too.
$(VENV)/.installed: pyproject.toml requirements.lock
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check --upgrade pip
	$(PY) -m pip install -q --disable-pip-version-check --require-hashes --no-deps -r requirements.lock
	$(PY) -m pip check
	touch $@

# The project itself, editable, without resolving anything further and without build isolation (the
# locked setuptools and mypy build it, nothing is fetched unhashed). A compiled module (a .so beside its
# .py) is what Python imports, so an edited settlement module re-runs this step: the old .so files are
# removed first, and the pure build leaves none.
$(VENV)/.project-$(BUILD): $(VENV)/.installed setup.py $(SETTLEMENT)
	rm -f $(VENV)/.project-* terminal/settlement/*.so
	MEDPAY_PURE_PYTHON=$(if $(filter pure,$(BUILD)),1,0) \
		$(PY) -m pip install -q --disable-pip-version-check --no-deps --no-build-isolation -e .
	touch $@

# Re-resolve the lock after changing dependencies in pyproject.toml (uv, from PyPI, into a scratch venv).
lock:
	python3 -m venv /tmp/medpay-uv && /tmp/medpay-uv/bin/python -m pip install -q uv
	/tmp/medpay-uv/bin/uv pip compile pyproject.toml --extra test --extra build --generate-hashes --universal \
		--python-version 3.11 -o requirements.lock

# init + models only: the full `medpay-provision all` also self-tests today's policy, a technician's check
models: setup
	$(BIN)/medpay-provision init
	$(BIN)/medpay-provision models

demo: models
	$(BIN)/medpay demo

check:
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports
	# one worker per core, at most four; a file's tests stay together (they share module fixtures)
	$(BIN)/python -m pytest -q -n auto --maxprocesses 4 --dist loadfile

# socat, Chromium and a CJK font for the device and browser tests (apt; root or sudo)
test-deps:
	bash scripts/system-deps.sh

test: test-deps models check

serve: models
	$(BIN)/medpay serve

# the kiosk in a browser: a fresh demo terminal at http://127.0.0.1:8080/kiosk
kiosk: models
	$(BIN)/medpay serve --demo

clean:
	rm -rf $(VENV) models/*.onnx models/cache build terminal/settlement/*.so

# The benchmark's peer library, bench only: dlib-bin is prebuilt; face_recognition without deps so pip
# never tries to compile dlib.
bench-deps: setup
	$(PY) -m pip install -q face_recognition_models dlib-bin
	$(PY) -m pip install -q --no-deps face_recognition

bench: models
	$(PY) bench/face.py
