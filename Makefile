# splinterlab: `sudo make demo` runs the comparison, `sudo make test` runs the tests.
# Both install what is missing first (Debian packages, .venv); see scripts/setup.sh.
BIN := .venv/bin

.PHONY: setup demo test check-model lint bench fidelity clean vmtest distrotest results

setup:
	@scripts/setup.sh

demo: setup
	$(BIN)/splinterlab run all --profile quick

test: setup
	$(BIN)/ruff check .
	$(BIN)/splinterlab clean
	$(BIN)/python -m pytest

check-model: setup
	$(BIN)/splinterlab clean
	$(BIN)/python -m pytest -m extended

lint: setup
	$(BIN)/ruff check .

bench: setup
	$(BIN)/splinterlab bench bringup --topo isp
	$(BIN)/splinterlab bench recovery --topo isp
	$(BIN)/splinterlab bench admission
	$(BIN)/splinterlab bench access --topo isp
	$(BIN)/splinterlab bench scale
	$(BIN)/splinterlab bench cluster --topo zoo:Bics
	$(BIN)/splinterlab fidelity

fidelity: setup
	$(BIN)/splinterlab fidelity

clean: setup
	$(BIN)/splinterlab clean

vmtest: setup
	@scripts/vmtest.sh

distrotest: setup
	@scripts/distrotest.sh

results: setup
	$(BIN)/splinterlab results
