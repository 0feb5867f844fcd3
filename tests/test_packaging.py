"""The built wheel carries the code, the default config and the word list."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_wheel_contains_code_config_and_word_list(tmp_path: Path) -> None:
    """A wheel with no code once shipped silently: check what ``pip install .`` would get."""
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(tmp_path), str(ROOT)],
        check=True,
        capture_output=True,
        timeout=300,
    )
    [wheel] = tmp_path.glob("streamsieve-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    expected = {
        "pipeline/cli.py",
        "pipeline/proxy.py",
        "pipeline/simulator/__init__.py",
        "filters/redact/__init__.py",
        "filters/registry.py",
        "pipeline/_config/default.yaml",
        "pipeline/_config/wordlists/en.txt",
        "pipeline/scanner/__init__.py",
        "pipeline/testing/__init__.py",
        "pipeline/testing/kit.py",
    }
    assert set() == expected - names
    [metadata] = [n for n in names if n.endswith(".dist-info/METADATA")]
    text = zipfile.ZipFile(wheel).read(metadata).decode()
    assert "Provides-Extra: testing" in text
    assert "Requires-Dist: hypothesis>=6.100; extra == 'testing'" in text
