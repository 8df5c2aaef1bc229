# netstack — two commands on a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-stamp
# Debian tools the kernel-differential and interoperability tests use (installed as root).
DEB_PKGS := iproute2 procps ethtool tshark nftables conntrack iptables clang

.PHONY: run test deps bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip >/dev/null 2>&1 || true
	$(PY) -m pip install -q -e '.[test]'
	touch $(STAMP)

# As root: apt-install what the kernel tests need (skipped packages are reported, and the
# tests that need them skip with the reason printed).
deps:
	@if [ "$$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then \
	  missing=""; for p in $(DEB_PKGS); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	  if [ -n "$$missing" ]; then \
	    echo "make deps: installing$$missing"; \
	    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing >/dev/null) \
	      || echo "make deps: WARNING: could not install$$missing; tests needing them will skip"; \
	  fi; \
	else echo "make deps: not root or no apt-get: kernel-differential tests will skip"; fi

run: $(STAMP)
	$(PY) examples/default/run.py

test: $(STAMP) deps
	$(PY) -m pytest -q -p no:cacheprovider tests

bench: $(STAMP)
	$(PY) bench/forwarding.py
	$(PY) bench/bpf.py
	$(PY) bench/netfilter.py
	$(PY) bench/l2.py
	$(PY) bench/offload.py

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .hypothesis out
