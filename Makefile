# The two commands a newcomer needs: `make run` and `make test`. Everything else is for the team.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
RASA := $(VENV)/bin/rasa
export RASA_TELEMETRY_ENABLED := false
export PYTHONDONTWRITEBYTECODE := 1

.PHONY: browser-deps setup model seed run test unit lint types validate eval shell clean help deploy

help:
	@echo "make run   - set up on first use, train if needed, start bot + action server + gateway"
	@echo "make test  - set up on first use, train if stale, lint, validate data, run every test"
	@echo "make eval  - evaluate the NLU model on the dev and both blind held-out splits (writes reports/)"
	@echo "make shell - chat with the bot in the terminal (rasa shell)"

setup:
	@bash scripts/setup.sh

model: setup
	@$(PY) -m bot.cli ensure-model

seed: setup
	@mkdir -p var
	@$(PY) -m actions.store.seed

run: model seed
	@bash scripts/run.sh

lint: setup
	@$(VENV)/bin/ruff check bot actions handoff tests scripts bench

types: setup
	@$(VENV)/bin/mypy bot actions handoff bench

validate: setup
	@$(RASA) data validate --config config.yml --domain bot/domain --data data --fail-on-warnings

# The release floors on the current model, then (if models/candidate/ holds one) the candidate
# compared with it; both run, and either failing fails the target.
eval: model
	@status=0; $(PY) -m bot.evaluation --out reports || status=$$?; \
	$(PY) -m bot.trainer.compare --out reports --if-candidate || status=$$?; exit $$status

shell: model seed
	@bash scripts/run.sh --shell

# Order as the reference assistants do it: lint -> validate -> train -> tests (unit, NLU/story,
# integration, browser). A stale model trains in the background while the tests that do not
# need it run first (tests/conftest.py, tests/background_training.py); pytest runs last so its
# summary closes the output.
test: lint validate browser-deps
	@$(VENV)/bin/pytest

unit: setup
	@$(VENV)/bin/pytest tests/unit

clean:
	rm -rf models/*.tar.gz models/*.fingerprint reports var .pytest_cache

browser-deps:
	@bash scripts/browser-deps.sh

# Trainer loop (docs/trainers.md): train a candidate, compare it, switch the running Rasa to it.
deploy: setup
	@$(PY) -m bot.cli deploy

# Bounded soak of a scaled-out gateway (2 nodes, PostgreSQL + Redis on loopback, 200
# concurrent borrowers x 3 waves, scripted agents), then one wave with a node SIGKILLed 8 s
# in; not part of `make test`. bench/soak.py; figures in reports/soak*.json.
.PHONY: soak
soak: setup
	@mkdir -p reports
	@$(PY) -m bench.soak --out reports/soak.json
	@$(PY) -m bench.soak --waves 1 --kill-node-after 8 --out reports/soak-kill.json

# Two real Rasa instances (PostgreSQL tracker store + RedisLockStore, bot/endpoints.scale.yml)
# behind one gateway; also part of `make test`; this target runs it alone.
.PHONY: scale-rasa-test
scale-rasa-test: model
	@$(VENV)/bin/pytest tests/integration/test_scale_rasa.py

# A queue change at a lender's peak (Q waiting x A agents, the gateway's service on its own
# Python, no sockets): bench/queue_fanout.py prints a table for docs/benchmarks.md. A few
# minutes; not part of `make test`.
.PHONY: bench-queue
bench-queue: setup
	@$$($(PY) -m handoff.interpreter) -m bench.queue_fanout

# Load benchmark: vanilla `rasa run` (REST) vs tuned Rasa vs the gateway (socket.io), same model,
# same run, 1..200 concurrent conversations; writes docs/benchmarks.md. Several minutes; not part
# of `make test`. Run it on an otherwise idle machine (docs/benchmarks.md says why).
.PHONY: bench
bench: model
	@$(PY) -m bench --train --levels 1,10,50,100,200 --seconds 15 --warmup 3 \
		--systems vanilla,vanilla-memory,tuned-rasa,tuned-rasa-x2,gateway,gateway-x2,gateway-stub
