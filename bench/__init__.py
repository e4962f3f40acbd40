"""The pgy-spider benchmark: ``python -m bench.run`` (``make bench``); see ``bench/run.py``.

Not part of the test suite. Everything runs on loopback against the project's own API simulator.
"""
