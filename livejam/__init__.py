"""livejam: a real-time MIDI co-performer (README.md for players; the layout: docs/architecture.md)."""
import contextlib
import os
import sys

__version__ = "0.2.0"  # the fallback when the package's metadata is not installed; kept equal to pyproject's

if sys.version_info < (3, 11):  # tomllib, and the typing the config loader relies on
    raise SystemExit(f"livejam needs Python 3.11 or newer (this is Python {sys.version.split()[0]})")

# A program on a musician's machine must not phone home. onnxruntime (1.29+ on
# Linux/macOS) starts its telemetry when it is *imported*: it writes a device id
# under ~/.cache/Microsoft/DeveloperTools and uploads a process event, whatever
# disable_telemetry_events() says later. Its environment switch, read at import,
# is the only way to stop that; a user who wants it on can set it to 0.
os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")
os.environ.setdefault("ORT_TELEMETRY_DISABLED", "1")  # the name newer releases document


def version() -> str:
    """The installed distribution's version (importlib.metadata), else this source tree's __version__."""
    from importlib.metadata import PackageNotFoundError, version as installed

    try:
        return installed("livejam")
    except PackageNotFoundError:
        return __version__


@contextlib.contextmanager
def quiet_stderr():
    """Silence what C libraries (ALSA, JACK, PortAudio) print on fd 2 while they probe or start: the
    user gets livejam's one line instead of their noise. Used by the MIDI ports and the sound output."""
    try:
        saved = os.dup(2)
    except OSError:
        yield
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)
