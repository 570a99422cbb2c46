# The two README commands: `make run` (set up, then run the daemon) and `make test` (set up, then the tests).
VENV ?= .venv
PY := $(VENV)/bin/python
BASE_VENV ?= .venv-base
BASE_PY := $(BASE_VENV)/bin/python
ARGS ?=

.PHONY: setup setup-dev python jack sound run test test-base quick-model
# `make run` installs what playing needs (numpy, mido, python-rtmidi, onnxruntime, and the sound, status
# screen and OSC extras: ~1 min the first time); `make test` and the training tools add torch, onnx,
# pytest and the rest (a few minutes more).
setup: $(VENV)/.installed-run
setup-dev: $(VENV)/.installed-dev

python:
	@python3 -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)' || { \
	  echo "livejam needs Python 3.11 or newer; python3 here is $$(python3 --version 2>&1)"; exit 1; }

$(VENV)/.installed-run: pyproject.toml | python
	@echo "setting up $(VENV): livejam and what playing needs (first time: about a minute)"
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install --progress-bar on -e '.[sound,ui,osc]'
	touch $@

$(VENV)/.installed-dev: $(VENV)/.installed-run
	@echo "adding the test and training dependencies (torch CPU, onnx, pytest, ...: a few minutes the first time)"
	$(PY) -m pip install --progress-bar on -e '.[train,dev]'
	touch $@

# System packages (tools/sysdeps.sh): installed where that is possible (root with apt-get: Debian, Ubuntu,
# CI); elsewhere one line says what to install. The tests need both; playing needs JACK only where no
# other MIDI system works (ALSA sequencer, CoreMIDI), and the sound libraries only for --sound.
jack:
	@sh tools/sysdeps.sh jack

sound:
	@sh tools/sysdeps.sh sound

# Play: with a working MIDI system (ALSA sequencer, CoreMIDI, a running JACK) livejam starts at once;
# otherwise a dummy-driver JACK server is started for the session and stopped (by PID) after it.
run: setup
	@case " $(ARGS) " in *" --sound"*) sh tools/sysdeps.sh sound || echo "(livejam plays on; --sound stays off)";; esac
	@if $(PY) -m livejam.cli ports >/dev/null 2>&1; then \
	  exec $(PY) -m livejam.cli run $(ARGS); \
	fi; \
	sh tools/sysdeps.sh jack || exit 1; \
	echo "no running MIDI system: starting a JACK server (dummy driver, 64 frames)"; \
	JACK_NO_START_SERVER=1 jackd -S -d dummy -r 48000 -p 64 >/tmp/livejam-jackd.log 2>&1 & jpid=$$!; \
	trap 'kill $$jpid 2>/dev/null; wait $$jpid 2>/dev/null' EXIT INT TERM; \
	jack_wait -w -t 20 >/dev/null 2>&1 || { echo "jackd did not start: see /tmp/livejam-jackd.log"; exit 1; }; \
	$(PY) -m livejam.cli run $(ARGS)

# The tests start and stop their own named JACK server (tests/conftest.py). JACK keeps a machine-wide
# registry of servers with a few slots; servers that died unstopped (SIGKILL) leave theirs taken, so
# with no jackd running at all the registry is cleared first. Then the runtime tests again on the base
# install (test-base), so a live module that needs an extra fails here.
test: setup-dev jack sound $(BASE_VENV)/.installed
	@pgrep -x jackd >/dev/null || rm -f /dev/shm/jack-shm-registry 2>/dev/null || true
	$(PY) -m pytest -q
	@$(MAKE) --no-print-directory test-base

# The base install: livejam with no extras (numpy, mido, rtmidi, onnxruntime, platformdirs) plus pytest and
# hypothesis, made afresh when pyproject.toml changes. The tests of the extras skip there (importorskip),
# the JACK tests ran above.
test-base: $(BASE_VENV)/.installed
	@echo "the runtime tests on the base install ($(BASE_VENV): no extras, no torch)"
	$(BASE_PY) -m pytest -q -m "not jack"

$(BASE_VENV)/.installed: pyproject.toml | python
	@echo "setting up $(BASE_VENV): livejam without extras, pytest, hypothesis (first time: under a minute)"
	rm -rf $(BASE_VENV)
	python3 -m venv $(BASE_VENV)
	$(BASE_PY) -m pip install -q --upgrade pip
	$(BASE_PY) -m pip install -q -e . 'pytest>=8' 'hypothesis>=6'
	touch $@

# Retrain a small model end to end on CPU in a few minutes (40 POP909 songs, configs/quick.toml):
# data (format 2: beats and chords) -> training (runs/quick: checkpoint + loss.png) -> ONNX with a
# torch-vs-onnxruntime parity check (runs/quick/model.onnx). POP909 from --pop909 or $LIVEJAM_DATA.
QUICK_SONGS ?= 40
quick-model: setup-dev
	$(PY) -m tools.prepare_data --limit $(QUICK_SONGS) --out data/quick
	$(PY) -m tools.train --config configs/quick.toml
	$(PY) -m tools.export_onnx --checkpoint runs/quick/ckpt.pt --out runs/quick/model.onnx
	$(PY) -m livejam.cli eval --model runs/quick/model.onnx --tokens data/quick/val.tokens.npy --max-events 5000
