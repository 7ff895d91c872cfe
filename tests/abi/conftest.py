"""Plugins for the ABI tests, built as out-of-tree plugins are (plugin_build.py): CMake projects that see only
vt_plugin.h.

Loading is process-wide and permanent (plugins are never unloaded), so each plugin is loaded at most once per
session and the tests never assume a fresh registry."""
from __future__ import annotations

import os

import pytest

from plugin_build import REPO, cmake_build

@pytest.fixture(scope="session")
def plugin_dirs(tmp_path_factory):
    root = tmp_path_factory.mktemp("plugins")
    return {
        "reference": cmake_build(os.path.join(REPO, "plugins", "reference"), str(root / "reference")),
        "bad": cmake_build(os.path.join(REPO, "tests", "fixtures", "bad_plugins"), str(root / "bad")),
    }


@pytest.fixture(scope="session")
def ref_plugin(plugin_dirs):
    import vibetensor.torch as vt

    return vt.ops.load_library(os.path.join(plugin_dirs["reference"], "vt_ref_cpu.so"))


@pytest.fixture(scope="session")
def bad_plugin(plugin_dirs):
    return lambda name: os.path.join(plugin_dirs["bad"], name + ".so")
