"""livejam: a real-time MIDI co-performer (see README.md; the layout is described there)."""
import sys

if sys.version_info < (3, 11):  # tomllib, and the typing the config loader relies on
    raise SystemExit(f"livejam needs Python 3.11 or newer (this is Python {sys.version.split()[0]})")
