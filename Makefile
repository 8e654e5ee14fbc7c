# The one interface to Modelport: `make run` serves the examples, `make test` runs the suite.
# Every target installs what it needs into .venv first, so both work on a fresh clone.

PYTHON ?= python3.11
VENV   := .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip
MODELS := models/.trained

.PHONY: run test test-fast lint format protos bench install clean examples soak

$(VENV)/.installed: setup.cfg
	test -x $(PY) || $(PYTHON) -m venv $(VENV) || python3 -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip
	$(PIP) install --quiet -e '.[all,test]'
	touch $@

install: $(VENV)/.installed

# Example models are trained from data scikit-learn ships; nothing is downloaded.
$(MODELS): $(VENV)/.installed examples/train.py
	$(PY) -m examples.train --out models
	touch $@

examples: $(MODELS)

run: $(MODELS)
	$(VENV)/bin/gunicorn wsgi:app

test: $(MODELS) lint
	$(PY) -m pytest $(PYTEST_ARGS)

# The unit tests alone (no gunicorn, no client subprocesses): under a minute.
test-fast: $(MODELS)
	$(PY) -m pytest -q -m "not e2e" $(PYTEST_ARGS)

# The soak (issue 15; README "Limits and failure behaviour"): 200,000 mixed requests on 2
# workers (memory growth, descriptors, unexpected answers), schemathesis with 60 examples per
# operation and phase (over 2,000 test cases) and 5,000 generated gRPC ModelInferRequests, each
# kind also mangled byte-wise. Figures are printed. Never part of `make test`; 15-30 minutes
# on 2 shared cores.
soak: $(MODELS)
	MODELPORT_FUZZ_EXAMPLES=5000 MODELPORT_SCHEMATHESIS_EXAMPLES=60 $(PY) -m pytest --soak -s \
		--timeout=7200 -k "soak or fuzz or answers_as_documented" \
		tests/soak tests/e2e/test_grpc_fuzz.py tests/blueprints/test_openapi.py $(PYTEST_ARGS)

# ruff; mypy strict on the server's packages (setup.cfg [mypy]); import-linter's contracts
# (setup.cfg [importlinter]: imports point down, no cycles).
lint: $(VENV)/.installed
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports

format: $(VENV)/.installed
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

protos: $(VENV)/.installed
	$(PY) -m protos.build

# The chassisml OMI client pins protobuf<5, so it gets its own venv (tests run it as a child).
OMI_VENV := $(VENV)/omi-client
.PHONY: omi-client
$(OMI_VENV)/.installed: $(VENV)/.installed
	test -x $(OMI_VENV)/bin/python || $(PY) -m venv $(OMI_VENV)
	$(OMI_VENV)/bin/python -m pip install --quiet chassisml==1.5.0
	touch $@

omi-client: $(OMI_VENV)/.installed

clean:
	rm -rf $(VENV) models

# -- Deployment (deploy/) ----------------------------------------------------------------------
# The image runs the commands above (`pip install '.[all]'`, `python -m examples.train --out
# models`, `gunicorn wsgi:app`); deploy-check proves deploy/ without a Docker engine, and
# deploy-test runs it on one (tests/deploy/; as root it installs Debian's docker.io,
# docker-compose and debootstrap when missing, and starts and stops its own dockerd).
# Never part of `make test`: about 4 minutes on a machine with nothing installed, 1 after that.
IMAGE ?= modelport:latest
DOCKER ?= docker
COMPOSE ?= $(shell $(DOCKER) compose version >/dev/null 2>&1 && echo $(DOCKER) compose || echo docker-compose)

.PHONY: image compose deploy-check deploy-test

image:
	DOCKER_BUILDKIT=1 $(DOCKER) build -f deploy/Dockerfile -t $(IMAGE) .

compose: $(MODELS) image
	$(COMPOSE) -p modelport -f deploy/docker-compose.yml up

deploy-check: $(MODELS)
	$(VENV)/bin/gunicorn --check-config wsgi:app
	$(PY) -m pytest tests/test_deploy.py $(PYTEST_ARGS)

deploy-test: $(MODELS)
	$(PY) -m pytest --deploy -m deploy --timeout=1200 tests/deploy $(PYTEST_ARGS)

# -- Benchmark (bench/) -------------------------------------------------------------------------
# Modelport against MLServer 1.7.1 and KServe 0.21 (each installed once into bench/.venvs/),
# servers on core 0, our load generator on core 1; writes bench/results/<date>.md. About 27
# minutes; `make bench BENCH_ARGS=--quick` is a smoke run (Modelport only, a few seconds).
# Never part of `make test`.
BENCH_ARGS ?=

bench: $(MODELS)
	$(PY) -c "import uvloop" 2>/dev/null || $(PIP) install --quiet -e '.[bench]'
	$(PY) -m bench.run $(BENCH_ARGS)
