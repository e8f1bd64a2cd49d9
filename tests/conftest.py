"""Hypothesis profiles: the test suite is reproducible, exploration is asked for.

``make test`` (and CI) runs the property tests derandomized: the same examples every run, so a red CI run is
reproducible and a green one stays green. ``make reliability`` and ``HYPOTHESIS_PROFILE=explore`` draw fresh
random examples every run, which is how new counterexamples are found; one that is found becomes a fixed test.
"""

import os

from hypothesis import settings

settings.register_profile("repeatable", derandomize=True)
settings.register_profile("explore", derandomize=False)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "repeatable"))
