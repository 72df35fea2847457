# The two commands of the Quickstart: `make run` and `make test`. Both build .venv when needed.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
PIP := $(BIN)/python -m pip
PIP_INSTALL := $(PIP) install --disable-pip-version-check --progress-bar off -q -c requirements/constraints.txt
# Re-install only when what is installed changes.
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml requirements/*.txt | cksum | cut -d' ' -f1)
TEST_STAMP := $(STAMP)-test

# Data and weights that no package ships join the study when this folder exists.
DATA_ROOT ?= $(wildcard ../shared/data)
DATA_ROOT_OPTION := $(if $(DATA_ROOT),--data-root $(DATA_ROOT))

.PHONY: run test smoke install clean

run: $(STAMP)
	$(BIN)/matteralign run default --out results $(DATA_ROOT_OPTION)

smoke: $(STAMP)
	$(BIN)/matteralign run smoke --out results-smoke $(DATA_ROOT_OPTION)

# Model environments (models that cannot share .venv) are built first, layered on .venv. The slow
# tests that `make test` runs after the default suite: each environment's tiny-twin checks, the
# mixed-environment study, a Ray run of CHGNet that must equal the local run bit for bit, and the
# CHGNet + SevenNet atom-level studies (resumed, scored per element, reported).
SLOW_TESTS := tests/models/test_mace.py tests/models/test_orb.py tests/models/test_mattersim.py \
              tests/models/test_pet.py tests/models/test_esm_models.py \
              tests/models/test_fair_esm.py tests/models/test_fairchem.py \
              tests/models/test_fairchem_block_counts.py \
              tests/run/test_environments.py \
              tests/run/test_ray_smoke.py::test_ray_chgnet_on_a_few_crystals_equals_local \
              tests/run/test_atom_level.py tests/report/test_feature_space.py

test: $(TEST_STAMP)
	$(BIN)/matteralign env create --all
	HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 $(BIN)/python -m pytest -q
	HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 $(BIN)/python -m pytest -q -m slow $(SLOW_TESTS)

install: $(STAMP)

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(PIP_INSTALL) --upgrade pip
	$(PIP_INSTALL) torch==2.13.0

$(STAMP): $(BIN)/python
	$(PIP_INSTALL) -e '.[default]'
	$(PIP_INSTALL) --no-deps -r requirements/no-deps.txt
	rm -f $(VENV)/.installed-*
	touch $@

$(TEST_STAMP): $(STAMP)
	$(PIP_INSTALL) -e '.[default,test,ray]'
	$(PIP_INSTALL) --no-deps -r requirements/test-no-deps.txt
	touch $@

clean:
	rm -rf $(VENV) results results-smoke
