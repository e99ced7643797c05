import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import settings

# Make tests/_reference.py importable whatever the rootdir.
sys.path.insert(0, str(Path(__file__).parent))

settings.register_profile("default", max_examples=30, deadline=None)
settings.load_profile("default")


@pytest.fixture
def rng():
    return np.random.default_rng(0)
