"""Fixtures of tests/reliability: the uninterrupted reference run on the tiny data (tests/conftest.py)."""

import sys
from pathlib import Path

import pytest

# The helpers beside the tests (train_harness, fault_injection) import by name; pytest's importlib
# mode does not put test directories on sys.path.
sys.path.insert(0, str(Path(__file__).resolve().parent))

@pytest.fixture(scope="session")
def uninterrupted_dir(tiny_data_dir, tmp_path_factory):
    """Save dir of one uninterrupted tiny run (train_harness settings): the reference for resumes."""
    from train_harness import run_to_end, train_command

    save_dir = tmp_path_factory.mktemp("uninterrupted")
    launch = run_to_end(train_command(tiny_data_dir, save_dir))
    assert launch.proc.returncode == 0, launch.output[-3000:]
    return save_dir
