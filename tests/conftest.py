"""Shared pytest options: the random seed, the simulators, and the quick subset
(``pytest -m quick``)."""

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


#: ``pytest -m quick``: a subset for local work, under 3 minutes on 2 cores with the simulators
#: built. The pure-Python modules (the golden model, the ISA, the arithmetic, the compiler's
#: quantisation, the host protocol and client), and the hazard programs and a few random
#: programs on one core on both simulators. The whole suite stays the gate.
QUICK_MODULES = {"test_arith", "test_config", "test_isa", "test_model", "test_quantize",
                 "test_hostlink_protocol", "test_hostlink_client", "test_layers"}
QUICK_TESTS = {"tests/test_core.py::test_hazards[verilator-8x8]",
               "tests/test_core.py::test_hazards[icarus-8x8]",
               "tests/test_core.py::test_random_programs[verilator-8x8]"}


def pytest_collection_modifyitems(config, items):
    for item in items:
        if item.module.__name__.rsplit(".", 1)[-1] in QUICK_MODULES or \
                item.nodeid in QUICK_TESTS:
            item.add_marker(pytest.mark.quick)
