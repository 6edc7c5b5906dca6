# aebench — `make help` lists the targets.
PYTHON ?= python3
export HF_HUB_OFFLINE ?= 1

.PHONY: help install demo test test-slow lint bench bench-offline report
help:  ## show this help
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-14s %s\n", $$1, $$2}'

install:  ## install aebench and its dependencies (editable, with test tools)
	$(PYTHON) -m pip install -q -e ".[dev]"

demo: install  ## install, then run the offline demo experiment and print its summary
	$(PYTHON) -m aebench run experiments/demo.yaml

test:  ## run the fast test suite
	$(PYTHON) -m pytest -q

test-slow:  ## run only the slow tests
	$(PYTHON) -m pytest -q -m slow

lint:  ## ruff check and ruff format --check (config in pyproject.toml)
	$(PYTHON) -m ruff check .
	$(PYTHON) -m ruff format --check .

bench:  ## reproduce the study: MNIST and CIFAR-10 experiments, then their report in results/report/
	$(PYTHON) -m aebench run experiments/mnist.yaml
	$(PYTHON) -m aebench run experiments/cifar.yaml
	$(PYTHON) -m aebench report --results results/mnist results/cifar --out results/report

bench-offline:  ## the study's protocol on the offline Fashion-MNIST (latent 1000), then baseline vs PCA at latent 32 over 3 and 15 epochs (one sweep: experiments/fashion-rate.yaml), then their report in results/report/
	$(PYTHON) -m aebench run experiments/fashion.yaml
	$(PYTHON) -m aebench run experiments/fashion-rate.yaml
	$(PYTHON) -m aebench report --results results/fashion results/fashion-rate --out results/report

# The committed report: every results folder under report/results/, MNIST first (the study's headline), then by name.
REPORT_FOLDERS = $(sort $(patsubst %/,%,$(dir $(wildcard report/results/*/results.jsonl))))
REPORT_RESULTS = $(strip $(filter report/results/mnist%,$(REPORT_FOLDERS)) $(filter-out report/results/mnist%,$(REPORT_FOLDERS)))
report:  ## regenerate the committed report/ from report/results/*/ (MNIST first, then by name)
	$(PYTHON) -m aebench report --results $(REPORT_RESULTS) --out report --force
