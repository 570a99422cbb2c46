#!/bin/sh
# System packages livejam may need, installed only where it can and should be (root with apt-get:
# Debian, Ubuntu, CI); anywhere else it says in one line what to install and lets the caller go on.
#   tools/sysdeps.sh jack        JACK (jackd, jack_wait): the MIDI transport where no other one works
#   tools/sysdeps.sh sound       libfluidsynth, PortAudio and a General MIDI soundfont: --sound only
# Exit status 0 when the packages are there (or were installed), 1 when they are missing.
set -u

have_jack() { command -v jackd >/dev/null 2>&1 && command -v jack_wait >/dev/null 2>&1; }

have_sound() {
  # ctypes finds the libraries on Linux and macOS alike (ldconfig is Linux only)
  python3 -c 'import ctypes.util as u, sys; sys.exit(0 if u.find_library("fluidsynth") and u.find_library("portaudio") else 1)' \
    && { [ "$(uname)" != Linux ] || ls /usr/share/sounds/sf2/*.sf2 >/dev/null 2>&1 || ls /usr/share/soundfonts/*.sf2 >/dev/null 2>&1; }
}

can_install() { [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; }

apt_install() {
  echo "installing $* (apt-get)"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@"
}

case "${1:-}" in
  jack)
    have_jack && exit 0
    if can_install; then apt_install jackd2 && exit 0; fi
    case "$(uname)" in
      Linux) echo "no MIDI system: install JACK (sudo apt install jackd2; Fedora: sudo dnf install jack-audio-connection-kit) or load the ALSA sequencer (sudo modprobe snd-seq)" ;;
      *) echo "no MIDI system found: on macOS CoreMIDI needs nothing; on Windows create ports with loopMIDI and pass --in/--out" ;;
    esac
    exit 1 ;;
  sound)
    have_sound && exit 0
    if can_install; then apt_install libfluidsynth3 libportaudio2 timgm6mb-soundfont && exit 0; fi
    case "$(uname)" in
      Darwin) echo "for --sound: brew install fluid-synth portaudio, and pass a General MIDI soundfont with --set sound.soundfont=FILE.sf2" ;;
      *) echo "for --sound: sudo apt install libfluidsynth3 libportaudio2 timgm6mb-soundfont (or your system's fluidsynth, portaudio and a General MIDI soundfont)" ;;
    esac
    exit 1 ;;
  *) echo "usage: tools/sysdeps.sh jack|sound" >&2; exit 2 ;;
esac
