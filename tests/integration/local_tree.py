"""Local source trees for copy/archive/sync tests, and a tool runner that fails with the tool's output."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

OLD = 1_577_934_245  # 2020-01-02 03:04:05 UTC


def run(*args, cwd=None) -> subprocess.CompletedProcess:
    """Run a tool; fail with its output when it exits non-zero."""
    done = subprocess.run([str(arg) for arg in args], cwd=cwd, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, f"{args} exited {done.returncode}:\n{done.stdout}\n{done.stderr}"
    return done


def make_tree(root: Path) -> Path:
    """``root/tree``: varied modes, an owner, a symlink, a binary file, an empty file, old mtimes."""
    tree = root / "tree"
    (tree / "sub" / "deeper").mkdir(parents=True)
    (tree / "private").mkdir()
    (tree / "a.txt").write_text("hello\n")
    (tree / "empty").write_bytes(b"")
    (tree / "sub" / "run.sh").write_text("#!/bin/sh\necho hi\n")
    (tree / "sub" / "run.sh").chmod(0o755)
    (tree / "private" / "key").write_text("secret\n")
    (tree / "private" / "key").chmod(0o600)
    (tree / "sub" / "deeper" / "blob").write_bytes(os.urandom(300_000))
    (tree / "sub" / "link").symlink_to("../a.txt")
    os.chown(tree / "a.txt", 1000, 1000)
    (tree / "private").chmod(0o700)
    for number, path in enumerate(sorted(tree.rglob("*"), reverse=True)):
        os.utime(path, ns=(OLD * 10**9, OLD * 10**9 + number * 1_000_000), follow_symlinks=False)
    os.utime(tree, (OLD, OLD))
    return tree
