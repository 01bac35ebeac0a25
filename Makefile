# The two commands: `make run` and `make test`. See README.md.
SHELL := /bin/bash
PORT ?= 8000
PY := .venv/bin/python
VAR := $(or $(DATA_DIR),$(CURDIR)/var)

.PHONY: run demo test deploy-test stop setup test-setup lint lock bench bench-quick crowd-sim crowd-sim-quick

setup:
	@tools/bootstrap.sh
	@tools/services.sh start imagemonkey
	@mkdir -p "$(VAR)/media" "$(VAR)/logs"
	@test -s "$(VAR)/secret_key" || (umask 077; $(PY) -c "import secrets; print(secrets.token_urlsafe(50))" > "$(VAR)/secret_key")
	@$(PY) manage.py migrate --no-input -v 0
	@$(PY) manage.py populate_labels
	@$(PY) manage.py make_groups -v 0 > /dev/null
	@$(PY) manage.py collectstatic --no-input -v 0

run: setup
	@if [ -n "$(DEMO)" ]; then tools/bootstrap.sh demo && $(PY) manage.py demo; fi
	@echo "==> ImageMonkey at http://127.0.0.1:$(PORT)  (Ctrl-C stops it; 'make stop' stops PostgreSQL and Redis)"
	@if [ -z "$$EMAIL_URL" ] && [ -z "$$EMAIL_HOST" ]; then \
	  echo "==> E-mail (sign-up confirmations, password resets) is printed on this console, not sent: set EMAIL_URL=smtp://user:pass@host:587 to send it"; \
	  export EMAIL_URL=console:; \
	fi; PORT=$(PORT) exec .venv/bin/gunicorn imagemonkey.wsgi -c deploy/gunicorn.conf.py

# A few public-domain photos, labelled and approved, some answers known, a demo moderator
# (validation/demo.py). Idempotent. `DEMO=1 make run` does it before serving.
demo: setup
	@tools/bootstrap.sh demo
	@$(PY) manage.py demo

stop:
	@tools/services.sh stop

test-setup:
	@tools/bootstrap.sh dev
	@tools/services.sh start imagemonkey
	@mkdir -p "$(VAR)/media"
	@test -s "$(VAR)/secret_key" || (umask 077; $(PY) -c "import secrets; print(secrets.token_urlsafe(50))" > "$(VAR)/secret_key")

# After changing a pin in pyproject.toml: rewrite requirements.lock and requirements-dev.lock.
lock:
	@tools/lock.sh

lint:
	@.venv/bin/ruff check .
	@.venv/bin/ruff format --check .

test: test-setup lint
	@$(PY) manage.py makemigrations --check --dry-run
	@$(PY) manage.py collectstatic --no-input -v 0
	@CACHE_KEY_PREFIX=test .venv/bin/pytest --create-db -n 2 $(PYTEST_ARGS)

# deploy/install.sh for real on fresh Debian 12 hosts in containers (tests/fresh_host.py):
# one host, then a db host and an app host (--role db, --role app). As root; CI runs it
# after `make test`.
deploy-test: test-setup
	@FRESH_HOST=1 .venv/bin/pytest -p no:xdist tests/test_fresh_host.py \
	  tests/test_fresh_host_roles.py $(PYTEST_ARGS)

# Benchmarks and the crowd simulation: never part of `make test` (see bench/).
bench: test-setup
	@$(PY) -m bench.run --scale full

bench-quick: test-setup
	@$(PY) -m bench.run --scale quick

crowd-sim: test-setup
	@$(PY) -m bench.crowd --scale full

crowd-sim-quick: test-setup
	@$(PY) -m bench.crowd --scale quick
