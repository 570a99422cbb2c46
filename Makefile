# The two README commands: `make run` (set up, then run the daemon) and `make test` (set up, then the tests).
VENV ?= .venv
PY := $(VENV)/bin/python
ARGS ?=

.PHONY: setup jack sound run test quick-model
setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[train,dev]'
	touch $@

# Debian jackd2 (jackd, jack_wait): the MIDI transport on machines without an ALSA sequencer.
jack:
	@command -v jackd >/dev/null && command -v jack_wait >/dev/null || { \
	  echo "installing jackd2 (apt-get)"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends jackd2; }

# Debian packages for --sound (pyfluidsynth's libfluidsynth, sounddevice's PortAudio, a small General MIDI
# soundfont: /usr/share/sounds/sf2/TimGM6mb.sf2) and the tests that render through the same synth.
sound:
	@{ ldconfig -p | grep -q libfluidsynth && ldconfig -p | grep -q libportaudio && \
	  test -e /usr/share/sounds/sf2/TimGM6mb.sf2; } || { \
	  echo "installing libfluidsynth3 libportaudio2 timgm6mb-soundfont (apt-get)"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
	    libfluidsynth3 libportaudio2 timgm6mb-soundfont; }

# If no MIDI system is usable, start a dummy-driver JACK server for the session and stop it (by PID) after.
run: setup jack sound
	@if $(PY) -m livejam.cli ports >/dev/null 2>&1; then \
	  exec $(PY) -m livejam.cli run $(ARGS); \
	fi; \
	echo "no usable MIDI system: starting a JACK server (dummy driver, 64 frames)"; \
	JACK_NO_START_SERVER=1 jackd -S -d dummy -r 48000 -p 64 >/tmp/livejam-jackd.log 2>&1 & jpid=$$!; \
	trap 'kill $$jpid 2>/dev/null; wait $$jpid 2>/dev/null' EXIT INT TERM; \
	jack_wait -w -t 20 >/dev/null 2>&1 || { echo "jackd did not start: see /tmp/livejam-jackd.log"; exit 1; }; \
	$(PY) -m livejam.cli run $(ARGS)

# The tests start and stop their own named JACK server (tests/conftest.py).
test: setup jack sound
	$(PY) -m pytest -q

# Retrain a small model end to end on CPU in a few minutes (40 POP909 songs, configs/quick.toml):
# data -> training (runs/quick: checkpoint + loss.png) -> ONNX (runs/quick/model.onnx) -> NLL vs Markov.
QUICK_SONGS ?= 40
quick-model: setup
	$(PY) tools/prepare_data.py --limit $(QUICK_SONGS) --out data/quick
	$(PY) tools/train.py --config configs/quick.toml
	$(PY) tools/export_onnx.py --checkpoint runs/quick/ckpt.pt --out runs/quick/model.onnx
	$(PY) -m livejam.cli eval --model runs/quick/model.onnx --tokens data/quick/val.tokens.npy --max-events 5000
