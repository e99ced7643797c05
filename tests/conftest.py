import os
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import settings

# Make tests/_reference.py importable whatever the rootdir.
sys.path.insert(0, str(Path(__file__).parent))

# The same examples on every run (derandomize), so that the README's test
# command and CI pass or fail on the code alone, not on the draw; the
# "explore" profile draws new ones each run to hunt for failures:
#   HYPOTHESIS_PROFILE=explore python -m pytest
settings.register_profile("repeatable", max_examples=30, deadline=None,
                          derandomize=True)
settings.register_profile("explore", max_examples=30, deadline=None,
                          derandomize=False)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "repeatable"))


@pytest.fixture
def rng():
    return np.random.default_rng(0)
