"""A crash at every phase: opsdeck SIGKILLed at the start of each phase of each mutating operation, read
from its own `-v` phase lines, then `unlock` and the checks that the estate recovered.

kill.py starts an operation and kills it as a phase starts; world.py reads the deck, git and the cloud;
operations.py says, for each operation, how to set it up, run it again and what its phases are;
cell.py runs one cell (an operation killed at one phase) and its checks; table.py prints the matrix. The full matrix
is `make crash` (tests/crash/matrix.py); `make test` runs one cell per kind of phase
(tests/integration/test_95_crash.py).
"""
