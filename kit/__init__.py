"""The shared kernel: database, errors, settings machinery, auth primitives, Redis, logs, the
task runtime and secrets at rest. It imports no other project package (tests/test_architecture.py).
"""
