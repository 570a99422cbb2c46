"""The layout is the architecture: each layer imports only the layers below it.

Each subpackage is imported alone in a fresh interpreter and the livejam
modules that came with it are compared with what that layer may use. An import
circle or a live module reaching into measurement or training shows up here.
"""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

GROUND = {"livejam", "livejam.config", "livejam.config.controls", "livejam.config.loading", "livejam.config.ranges"}
MIDI = {"livejam.midi", "livejam.midi.spec", "livejam.midi.ledger", "livejam.midi.normalise", "livejam.midi.ports",
        "livejam.midi.keeper", "livejam.midi.jack", "livejam.midi.xruns", "livejam.midi.system"}
EVENTS = {"livejam.events", "livejam.beatmap", "livejam.harmony", "livejam.chart"}
BEAT = {"livejam.beat", "livejam.beat.live", "livejam.beat.snapshot", "livejam.beat.midiclock", "livejam.beat.countin",
        "livejam.beat.tempo", "livejam.midi.ratelimit"}
ENGINE = {"livejam.engine", "livejam.engine.contexts", "livejam.engine.keys", "livejam.engine.kv",
          "livejam.engine.sampling", "livejam.engine.session"}

# module -> the livejam modules it may bring in (itself included); None: anything but torch
ALLOWED = {
    "livejam.config": GROUND,
    "livejam.midi.ledger": GROUND | MIDI,
    "livejam.midi.keeper": MIDI | {"livejam"},  # the port adapters only: no config, no daemon
    "livejam.midi.xruns": MIDI | {"livejam"},
    "livejam.midi.system": MIDI | {"livejam"},  # the transport the daemon runs on: no config, no daemon
    "livejam.events": GROUND | EVENTS,
    "livejam.chart": GROUND | EVENTS,  # the CLI, the OSC thread and the performers read charts
    "livejam.engine": GROUND | EVENTS | ENGINE,
    "livejam.clock": {"livejam", "livejam.clock"},  # wall clocks: nothing else
    "livejam.beatmap": {"livejam", "livejam.beatmap"},  # musical time is pure
    "livejam.beat.live": GROUND | BEAT | {"livejam.beatmap", "livejam.midi", "livejam.midi.spec"},
    "livejam.beat.start": GROUND | BEAT | {"livejam.beat.start", "livejam.beatmap", "livejam.clock", "livejam.midi",
                           "livejam.midi.spec"},
    "livejam.beat.countin": GROUND | {"livejam.beat", "livejam.beat.countin", "livejam.midi", "livejam.midi.spec"},
    "livejam.stage.addons": GROUND | {"livejam.stage", "livejam.stage.addons"},  # add-ons load when asked for
    "livejam.performers.base": GROUND | EVENTS | {"livejam.performers", "livejam.performers.base"},
    # the output process stays small: no performer, no engine, no stage
    "livejam.output.child": GROUND | MIDI | {"livejam.output", "livejam.output.child", "livejam.output.wire",
                                             "livejam.scheduler", "livejam.clock", "livejam.events", "livejam.stats",
                                             "livejam.beatmap", "livejam.harmony"},
    "livejam.daemon": None,
    "livejam.dispatch": None,
}
# a live session never loads these
NEVER_LIVE = ("livejam.measure", "livejam.cli", "tools")


def loaded_after_import(module: str) -> set[str]:
    code = (f"import sys, json, {module}; "
            "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in ('livejam', 'tools', 'torch'))))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    return set(json.loads(out.stdout))


@pytest.mark.parametrize("module", sorted(ALLOWED))
def test_each_layer_imports_only_the_layers_below(module):
    loaded = loaded_after_import(module)
    assert not any(m == "torch" or m.startswith("torch.") for m in loaded), "the runtime never imports torch"
    allowed = ALLOWED[module]
    if allowed is None:
        bad = {m for m in loaded if m.startswith(NEVER_LIVE)}

    else:
        bad = loaded - allowed
    assert not bad, f"{module} brings in {sorted(bad)}"


@pytest.mark.parametrize("module", ["livejam.performers.neural", "livejam.performers.markov", "livejam.dispatch"])
def test_the_stage_is_on_top(module):
    """Sound, screen, OSC and steering sit above the session: the performers and the dispatcher
    never load them (the daemon builds them only when asked for)."""
    assert not {m for m in loaded_after_import(module) if m.startswith("livejam.stage")}


def test_every_module_stays_under_400_lines():
    long = {str(p.relative_to(ROOT)): n for p in (ROOT / "livejam").rglob("*.py")
            if (n := len(p.read_text().splitlines())) > 400}
    assert not long, f"split these by responsibility: {long}"


def test_the_readme_names_every_package_and_its_job():
    """README's Architecture table lists each package of livejam/ (the models folder holds data only)."""
    readme = (ROOT / "README.md").read_text()
    table = readme.split("## Architecture", 1)[1].split("\n## ", 1)[0]
    packages = {p.parent.name for p in (ROOT / "livejam").glob("*/__init__.py")} - {"models"}
    assert packages, "no packages found"
    missing = {name for name in packages if f"`livejam/{name}/`" not in table}
    assert not missing, f"README's Architecture section does not name {sorted(missing)}"
