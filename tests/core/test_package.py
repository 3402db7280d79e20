"""The package's public surface: every name resolves, and a cold import stays light."""

import subprocess
import sys

import p2c_core


def test_every_public_name_resolves_to_the_object_its_module_defines():
    import importlib

    for name in p2c_core.__all__:
        module = importlib.import_module(p2c_core._EXPORTS[name])
        assert getattr(p2c_core, name) is getattr(module, name), name


def test_registering_flows_loads_no_heavy_module():
    code = (
        "import sys, p2c_core, p2c_core.flows; "
        "heavy = [m for m in ('pydantic', 'httpx', 'azure.core', 'azure.data.tables') if m in sys.modules]; "
        "print(','.join(heavy))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == ""


def test_an_unknown_name_is_an_attribute_error():
    try:
        p2c_core.NoSuchThing  # noqa: B018
    except AttributeError as exc:
        assert "NoSuchThing" in str(exc)
    else:
        raise AssertionError("no AttributeError")
