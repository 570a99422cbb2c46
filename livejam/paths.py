"""Where livejam finds its shipped files."""
from __future__ import annotations

from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
# The shipped default model (ONNX, self-describing) and its model card beside it.
DEFAULT_MODEL = REPO_ROOT / "models" / "livejam-small.onnx"


def user_config_file() -> Path:
    """The config `livejam run` loads when no --config is given (if it exists), and `livejam learn`
    writes to: ~/.config/livejam/config.toml on Linux (XDG_CONFIG_HOME respected), the platform's
    own place elsewhere (platformdirs)."""
    return _user_dir("user_config_dir", "~/.config") / "config.toml"


def user_sessions_dir() -> Path:
    """Where sessions are recorded by default: ~/.local/share/livejam/sessions on Linux."""
    return _user_dir("user_data_dir", "~/.local/share") / "sessions"


def _user_dir(kind: str, fallback: str) -> Path:
    try:
        import platformdirs
    except ImportError:  # a base dependency; an install without it still finds the Linux places
        return Path(fallback).expanduser() / "livejam"
    return Path(getattr(platformdirs, kind)("livejam", appauthor=False))
