"""The one rule by which a Clara value is a boolean (disabled, @disabled options, use_amp ...)."""

from __future__ import annotations

import pytest
from conftest import resolve

from clara_hydra.values import as_bool, is_name_ref


@pytest.mark.parametrize("value,want", [
    pytest.param(True, True, id="true"),
    pytest.param(False, False, id="false"),
    pytest.param(1, True, id="one"),
    pytest.param(0.0, False, id="zero-float"),
    pytest.param(" TRUE ", True, id="string-any-case-spaces"),
    pytest.param("false", False, id="string-false"),
    pytest.param(2, None, id="two-is-not-a-boolean"),
    pytest.param("yes", None, id="yes-is-not-a-boolean"),
    pytest.param(None, None, id="null"),
    pytest.param("{flag}", None, id="name-ref-is-known-later"),
])
def test_as_bool(value, want):
    assert as_bool(value) is want


@pytest.mark.parametrize("value,want", [
    pytest.param("{flag}", True, id="name"), pytest.param("{a}{b}", False, id="two-names"),
    pytest.param("x{flag}", False, id="text-around"), pytest.param(True, False, id="bool"),
])
def test_is_name_ref(value, want):
    assert is_name_ref(value) is want


@pytest.mark.parametrize("written,want", [
    pytest.param(1, True, id="one"), pytest.param("false", False, id="string"),
])
def test_a_well_known_boolean_param_takes_the_same_values(write_config, written, want):
    """use_amp is typed bool: what the reader takes as a boolean, the schema takes too."""
    out = resolve(write_config({"use_amp": written, "train": {"model": {"name": "UNet", "args": {}}}}))
    assert out["use_amp"] is want
