"""Suite-wide settings: tests never download (every loader fails fast instead); the
``one_torch_thread`` fixture for tests that run tiny torch models."""
import os

import pytest

os.environ["ONEBIT_NO_DOWNLOAD"] = "1"


@pytest.fixture
def one_torch_thread():
    """One intra-op torch thread for the test (restored afterwards): tiny tensors gain nothing
    from torch's pool, and the 2-core machine is shared."""
    import torch

    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)
