"""Shared pytest options: the random seed and the simulators."""

import os
import zlib

import pytest

from sim.runner import SIMULATORS


def pytest_addoption(parser):
    parser.addoption("--seed", type=int, default=None,
                     help="seed for randomised tests (default: LOCKSTEP_SEED or a fixed one)")
    parser.addoption("--waves", action="store_true", help="dump waveforms of cocotb runs")


@pytest.fixture
def seed(request):
    """The seed of this test: --seed, else LOCKSTEP_SEED, else derived from the test's name.
    It is printed with every failure (cocotb messages carry it too)."""
    value = request.config.getoption("--seed")
    if value is None and os.environ.get("LOCKSTEP_SEED"):
        value = int(os.environ["LOCKSTEP_SEED"])
    if value is None:
        value = zlib.crc32(request.node.nodeid.encode()) & 0xFFFF
    print(f"seed = {value} (rerun with --seed {value})")
    return value


@pytest.fixture(autouse=True)
def _waves(request, monkeypatch):
    if request.config.getoption("--waves"):
        monkeypatch.setenv("LOCKSTEP_WAVES", "1")


@pytest.fixture(params=SIMULATORS)
def simulator(request):
    return request.param
