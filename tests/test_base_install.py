"""Every livejam module imports on the base install (numpy, mido, rtmidi, onnxruntime, platformdirs):
an extra (torch, rich, matplotlib, fluidsynth, python-osc, Link) is imported where it is used, never at
the top of a module the live path loads. `make test` runs this in .venv-base too (`make test-base`)."""
import importlib
import importlib.util
import pkgutil

import livejam

# Modules that are an extra's own front end, with the package they need at the top.
NEEDS_EXTRA = {"livejam.stage.ui.screen": "rich"}


def test_every_module_imports_without_the_extras():
    names = [m.name for m in pkgutil.walk_packages(livejam.__path__, "livejam.")]
    assert "livejam.daemon" in names and "livejam.engine.kv" in names
    failed = []
    for name in names:
        extra = NEEDS_EXTRA.get(name)
        if extra and importlib.util.find_spec(extra) is None:
            continue
        try:
            importlib.import_module(name)
        except ImportError as e:
            failed.append(f"{name}: {e}")
    assert not failed, "modules that need an extra at import:\n" + "\n".join(failed)


def test_the_modules_named_as_needing_an_extra_exist():
    for name in NEEDS_EXTRA:
        assert importlib.util.find_spec(name) is not None, f"{name} is gone: drop it from NEEDS_EXTRA"
