"""The stage: what a live session adds around the performer, each optional and each closed with a
deadline: sound (stage/sound: a General MIDI synth on the audio device), the status screen and
plain lines (stage/ui), OSC remote control (osc.py) over the knobs (steer.py), and their assembly
from the command line and config (addons.py). Nothing below the stage imports it.
"""
