# The two commands of the README. Both set up everything on a fresh machine (scripts/bootstrap.sh).
.PHONY: demo test lint bench crash

demo:
	@scripts/bootstrap.sh
	@.venv/bin/opsdeck demo

test:
	@scripts/bootstrap.sh
	@scripts/test.sh

lint:
	@scripts/bootstrap.sh
	@.venv/bin/ruff check opsdeck tests bench

bench:
	@scripts/bootstrap.sh
	@.venv/bin/python -m bench.run

# The full crash matrix (tests/crash/): every mutating operation killed at each of its phases; about an
# hour or more. Prints the table and writes it to crash-matrix.md. ARGS go to pytest (ARGS='-k recover').
crash:
	@scripts/bootstrap.sh
	@scripts/crash.sh $(ARGS)
