# The two commands a new machine needs are `make up` and `make test` (see README). Everything else is help.
SHELL := /bin/bash
.DEFAULT_GOAL := help
STACK ?= sim
export STACK

.PHONY: help bootstrap doctor up preview down lint test test-fast test-durations bench bench-protocol reliability mutation
.PHONY: graph fleet
help:
	@echo "make doctor   read-only preflight of every host of the $(STACK) stack: a table of what to fix"
	@echo "make up       bootstrap (venv + Pulumi engine) and deploy the $(STACK) stack"
	@echo "make preview  show drift: pulumi preview --refresh on the $(STACK) stack"
	@echo "make down     pulumi destroy the $(STACK) stack"
	@echo "make lint     ruff and mypy (settings in pyproject.toml); read-only, make test runs it first"
	@echo "make test     bootstrap, lint, and run the whole test suite (unit, labsim, end-to-end); its figures go to .state/reliability/"
	@echo "make test-fast  the unit and conformance tiers only (under a minute)"
	@echo "make test-durations  each test module's last measured seconds into tests/module-seconds.json (a fresh clone runs the longest first)"
	@echo "make reliability  rerun tests/reliability with a 60 s soak and random examples; a green run rewrites"
	@echo "              docs/reliability.md and docs/reliability-figures.json (commit both)"
	@echo "make acceptance  does the code work on the $(STACK) lab? doctor, refreshing preview, every read; report in .state/acceptance (CYCLE=yes: also up / drift / heal / destroy)"
	@echo "make graph    picture of the $(STACK) stack: hosts, resources, dependencies, drift (GRAPH_OUT=file.svg|.png)"
	@echo "make fleet    every lab stack: state and drift (FLEET_ARGS='up sim sim-three --skip-unreachable' acts)"
	@echo "make mutation  mutmut over the modules that matter most, then the named mistakes against the fast tiers;"
	@echo "              rewrites docs/mutation.md and docs/mutation-figures.json (commit both; long, MODULES=... limits it)"
	@echo "make bench    scale benchmark: whole labs of N clouds (N=2,6,12,20; limit with N=2,6), figures in docs/performance.md"

bootstrap:
	@scripts/bootstrap.sh

# Simulated stacks (config has wapconnector:labsim) get labsim started first and stopped by `make down`.
doctor: bootstrap
	@. scripts/env.sh && python scripts/lab.py start $(STACK)
	@. scripts/env.sh && python scripts/doctor.py --stack $(STACK)

up: bootstrap
	@. scripts/env.sh && python scripts/lab.py start $(STACK)
	@scripts/pulumi.sh up --refresh --yes --skip-preview
	@. scripts/env.sh && python scripts/lab.py summary $(STACK)

preview: bootstrap
	@. scripts/env.sh && python scripts/lab.py start $(STACK)
	@scripts/pulumi.sh preview --refresh --diff

down: bootstrap
	@. scripts/env.sh && python scripts/lab.py start $(STACK)
	@scripts/pulumi.sh destroy --yes --skip-preview
	@. scripts/env.sh && python scripts/lab.py stop $(STACK)

# Static checks; they report and never rewrite a file (no --fix, no formatter).
lint: bootstrap
	@. scripts/env.sh && ruff check --no-fix . && mypy

# make test leaves the working tree as it found it: its figures and page go to .state/reliability/ (ignored).
# The tests run on every core (pytest-xdist; TEST_WORKERS=N sets how many), then those marked serial alone; the
# run ends with each tier's time, the 20 slowest tests (all in .state/test-times.json) and one closing line.
test: bootstrap lint
	@. scripts/env.sh && .venv/bin/python scripts/reliability_report.py --suite $(PYTEST_ARGS)

# The unit and conformance tiers, on every core: a minute at most.
test-fast: bootstrap
	@. scripts/env.sh && .venv/bin/python scripts/test_suite.py --workers auto -m "unit or conformance" $(PYTEST_ARGS)

# What a fresh clone orders the test modules by (longest first): each module's seconds from this checkout's last
# measured times (.state/test-durations.json, kept by every test run), into tests/module-seconds.json (commit it).
test-durations: bootstrap
	@. scripts/env.sh && .venv/bin/python -m tests.timings

reliability: bootstrap
	@. scripts/env.sh && RELIABILITY_FIGURES=.state/reliability/figures.jsonl python scripts/reliability_report.py --run

# Mutation testing (docs/mutation.md says how long it takes): mutmut over the modules of scripts/mutation_report.py,
# one worker at nice 10, then the named mistakes in a copy of the tree. Its work files go to mutants/ and .state/.
# MODULES="providers/ownership.py ..." measures only those; NAMED=no skips the named mistakes, NAMED=only does
# nothing else.
mutation: bootstrap
	@. scripts/env.sh && python scripts/mutation_report.py $(if $(MODULES),--modules $(MODULES)) \
		$(if $(filter no,$(NAMED)),--no-named) $(if $(filter only,$(NAMED)),--named-only)

# Whole labs of N clouds under the engine and labsim (long: N=20 is ~100 hosts). N=2,6 limits it (or BENCH_CLOUDS).
# Each N's record (with the commit it measured) goes to docs/performance-figures.json, which renders
# docs/performance.md: commit both.
bench: bootstrap
	@. scripts/env.sh && python benchmarks/lab_scale.py $(if $(N),--clouds $(N)) --figures docs/performance-figures.json
	@. scripts/env.sh && python scripts/performance_report.py

# labsim's protocol layer, then how long the transport's bounded waits take (what the tests assert as counts).
bench-protocol: bootstrap
	@. scripts/env.sh && python benchmarks/labsim_protocol.py
	@. scripts/env.sh && python benchmarks/transport_timings.py

# -- operator tools over lab stacks (labops/) --------------------------------------------------------------------
# The lab as a Graphviz picture; drift from one refreshing preview (read-only). Writes .state/graph/$(STACK).svg
# unless GRAPH_OUT names another file (the README's picture: GRAPH_OUT=docs/images/sim-graph.svg).
graph: bootstrap
	@. scripts/env.sh && python scripts/lab.py start $(STACK)
	@. scripts/env.sh && python -m labops.graph --stack $(STACK) $(if $(GRAPH_OUT),--out $(GRAPH_OUT))

# Every lab stack at a glance (one refreshing preview each, side by side), or an action on a chosen set:
# make fleet FLEET_ARGS='up sim sim-three --skip-unreachable --continue-on-error' (python -m labops.fleet --help).
fleet: bootstrap
	@. scripts/env.sh && python -m labops.fleet $(or $(FLEET_ARGS),status)

# Acceptance against any stack, real or simulated: read-only unless CYCLE=yes (which runs up / drift / heal /
# destroy and changes the lab). Writes a report an operator can attach to a change ticket (scripts/acceptance.py).
.PHONY: acceptance
acceptance: bootstrap
	@. scripts/env.sh && python scripts/lab.py start $(STACK)
	@. scripts/env.sh && python scripts/acceptance.py --stack $(STACK) $(if $(filter yes,$(CYCLE)),--cycle) $(if $(ACCEPTANCE_REPORT),--report $(ACCEPTANCE_REPORT))
