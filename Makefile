# The two quickstart commands: `make run` (the main job) and `make test`.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
BROKER := $(VENV)/.mosquitto
BROWSER := $(VENV)/.chromium
DEPLOY_TOOLS := $(VENV)/.deploy-tools
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

# `make run CONSENSUS=pbft`: the same demo on a 4-node PBFT consortium (./.grantchain-demo-pbft).
CONSENSUS ?= raft

.PHONY: run test lint clean

$(STAMP): pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	touch $(STAMP)

# Mosquitto, the MQTT broker that `make run` and the MQTT tests start (Debian packages).
$(BROKER): | $(STAMP)
	@command -v mosquitto >/dev/null 2>&1 || [ -x /usr/sbin/mosquitto ] || { \
	  echo "installing mosquitto (apt-get)"; \
	  $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install \
	    -y -qq --no-install-recommends mosquitto mosquitto-clients >/dev/null; }
	touch $(BROKER)

# Chromium, the browser the explorer's tests drive with Playwright (Debian package;
# `playwright install` would download a browser build, which this setup never does).
$(BROWSER): | $(STAMP)
	@command -v chromium >/dev/null 2>&1 || [ -x /usr/bin/chromium ] || { \
	  echo "installing chromium (apt-get)"; \
	  $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install \
	    -y -qq --no-install-recommends chromium >/dev/null; }
	touch $(BROWSER)

# systemd-analyze and ip (iproute2), with which tests/deploy/ verifies the systemd unit and
# runs nodes in network namespaces (Debian packages; the tests skip, saying why, without).
$(DEPLOY_TOOLS): | $(STAMP)
	@command -v systemd-analyze >/dev/null 2>&1 && command -v ip >/dev/null 2>&1 || { \
	  echo "installing systemd and iproute2 (apt-get)"; \
	  $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install \
	    -y -qq --no-install-recommends systemd iproute2 >/dev/null; }
	touch $(DEPLOY_TOOLS)

run: $(STAMP) $(BROKER)
	$(BIN)/grantchain demo --consensus $(CONSENSUS)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

test: lint $(BROKER) $(BROWSER) $(DEPLOY_TOOLS)
	$(BIN)/pytest -q

clean:
	rm -rf $(VENV) .grantchain-demo .grantchain-demo-pbft .pytest_cache .mypy_cache .ruff_cache
