# Two commands for a fresh machine: `make run` and `make test` (see README.md).
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
# Media and browser tests run in a network namespace that has only loopback.
NETNS := $(shell [ "$$(id -u)" = 0 ] && echo "unshare -n" || echo "unshare -rn")
HOST ?= 127.0.0.1
PORT ?= 8080
RTC_IP ?= 127.0.0.1
DATA_DIR ?= data

.PHONY: run test lint typecheck unit install install-test install-bench system-deps clean bench

$(PY):
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip

$(VENV)/.installed: pyproject.toml | $(PY)
	$(PY) -m pip install -q -e .
	touch $@

$(VENV)/.installed-test: pyproject.toml $(VENV)/.installed
	$(PY) -m pip install -q -e '.[test]'
	touch $@

$(VENV)/.installed-bench: pyproject.toml $(VENV)/.installed-test
	$(PY) -m pip install -q -e '.[test,bench]'
	touch $@

install: $(VENV)/.installed

install-test: $(VENV)/.installed-test

install-bench: $(VENV)/.installed-bench

# Debian's Chromium (never a downloaded browser), ffmpeg for recordings, iproute2 for namespaces,
# Janus (the benchmark's reference server).
system-deps:
	@missing=""; \
	[ -x /usr/lib/chromium/chromium ] || missing="$$missing chromium"; \
	command -v ffprobe >/dev/null || missing="$$missing ffmpeg"; \
	command -v janus >/dev/null || missing="$$missing janus"; \
	command -v ip >/dev/null || missing="$$missing iproute2"; \
	command -v unshare >/dev/null || missing="$$missing util-linux"; \
	if [ -n "$$missing" ]; then \
		echo "installing:$$missing"; \
		$(SUDO) apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq $$missing >/dev/null; \
	fi

run: install
	$(VENV)/bin/balie serve --host $(HOST) --port $(PORT) --rtc-ip $(RTC_IP) --data-dir $(DATA_DIR)

lint: install-test
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

typecheck: install-test
	$(VENV)/bin/mypy

test: install-test system-deps lint typecheck
	$(NETNS) sh -c 'ip link set lo up && BALIE_REQUIRE_NAMESPACE=1 $(VENV)/bin/pytest -q -p no:cacheprovider'

# Benchmarks (not timed tests): Balie, Janus VideoRoom and aiortc's MediaRelay under the same load,
# in a loopback-only namespace; results go to BENCHMARKS.md and bench/cpu-vs-load.png with the
# commands that made them. Takes about 10 minutes on 2 cores.
BENCH_DURATION ?= 15
bench: install-bench system-deps
	$(PY) -m loadtest.microbench --markdown .bench-micro.md
	$(PY) -m loadtest.recorder_bench --seconds 10 --markdown .bench-recorder.md
	$(PY) -c 'from loadtest.media import load_media; from loadtest.runner import default_media_cache; load_media(default_media_cache())'
	$(NETNS) sh -c 'ip link set lo up && $(PY) -m loadtest.bench --duration $(BENCH_DURATION) --json .bench-load.json'
	$(PY) -m loadtest.benchreport --micro .bench-micro.md --load .bench-load.json --out BENCHMARKS.md --chart bench/cpu-vs-load.png --recorder .bench-recorder.md
	rm -f .bench-micro.md .bench-load.json .bench-recorder.md

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
