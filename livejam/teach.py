"""`livejam teach`: fine-tune the model on your recorded sessions with the clone's tools.teach, or
say in one line what it needs (the training tools live in the clone, torch in the training extra)."""
from __future__ import annotations

import argparse
import sys


def add_parser(subparsers) -> argparse.ArgumentParser:
    # no prefix characters: every option (--help too) goes to tools.teach as it is
    p = subparsers.add_parser("teach", add_help=False, prefix_chars="\0",
                              help="fine-tune the model on your recorded sessions: livejam teach SESSIONS_DIR "
                                   "--out my.onnx (needs the clone and the training extra)")
    p.add_argument("args", nargs="*", help="tools.teach's arguments (livejam teach --help)")
    p.set_defaults(func=run)
    return p


def run(args: argparse.Namespace) -> int:
    try:
        from tools.teach import main, missing_extra
    except ImportError:  # a pip install has no tools/: teaching lives in the clone
        print("livejam: teach runs the training tools of a livejam clone: in the clone, "
              "pip install -e '.[train]' and run livejam teach there", file=sys.stderr)
        return 2
    missing = missing_extra()
    if missing:
        print(f"livejam: teach needs the training extra ({missing} is missing): pip install -e '.[train]'",
              file=sys.stderr)
        return 2
    return main(args.args)
