"""Shared test fixtures: a fresh reference 'context' per test, and the gpu marker's skip."""
import pytest
import torch

from prefixlm_attn.backends.reference import reset_dead_context


@pytest.fixture(autouse=True)
def _fresh_reference_context():
    reset_dead_context()
    yield
    reset_dead_context()


def pytest_collection_modifyitems(config, items):
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs CUDA")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)
