# Set-up and checks. `make install` works on a fresh machine (apt for Fashion-MNIST where available).
PYTHON ?= python
PIP ?= $(PYTHON) -m pip
# torch/torchvision pinned to the CUDA wheels that run on CPU too; override for other builds
TORCH_SPEC ?= torch==2.14.1 torchvision==0.29.1

.PHONY: install install-data lint test test-all slurm-up slurm-down clean

install: install-data
	$(PIP) install $(TORCH_SPEC)
	$(PIP) install -e ".[dev]"

# Debian's package holds the full official Fashion-MNIST (dataset=fashion); skipped without apt or root.
install-data:
	@if [ -f /usr/share/datasets/fashion-mnist/t10k-labels-idx1-ubyte.gz ]; then \
		echo "Fashion-MNIST already installed"; \
	elif command -v apt-get >/dev/null 2>&1 && [ "$$(id -u)" = 0 ]; then \
		(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq dataset-fashion-mnist) \
		|| echo "warning: could not install dataset-fashion-mnist; dataset=fashion will need the files"; \
	else \
		echo "note: no apt-get as root; for dataset=fashion run: sudo apt-get install dataset-fashion-mnist"; \
	fi

lint:
	$(PYTHON) -m ruff check .
	$(PYTHON) -m ruff format --check .

test:
	$(PYTHON) -m pytest

test-all:
	$(PYTHON) -m pytest -m ""

# A single-node SLURM cluster on this machine (root, Debian packages) to try hydra/launcher=slurm.
slurm-up:
	$(PYTHON) -m lga.slurm up

slurm-down:
	$(PYTHON) -m lga.slurm down

clean:
	rm -rf logs outputs multirun wandb .pytest_cache
