"""Data shipped inside the package (themes, the sample deck): folders beside this file, else read with
importlib.resources.

In a source checkout they are the top-level ``themes/`` and ``sample_envs/`` (linked into the
package); in a wheel they are package data. Nothing here depends on where the source tree is.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from opsdeck.errors import OpsdeckError

if TYPE_CHECKING:
    from importlib.resources.abc import Traversable


def shipped(name: str) -> Traversable:
    """A directory shipped with opsdeck (``themes`` or ``sample_envs``)."""
    beside = Path(__file__).parent / name
    if beside.is_dir():  # installed as files (a checkout, a wheel): what importlib.resources would return
        return beside  # without loading it (~1.5 ms of the deck's first frame, which reads the themes)
    from importlib import resources  # an installation inside an archive

    item = resources.files("opsdeck") / name
    if not item.is_dir():
        raise OpsdeckError(f"opsdeck's {name} are missing from its installation ({item}); reinstall opsdeck")
    return item


def copy_tree(source: Traversable, target: Path, skip: Callable[[str], bool] = lambda _: False) -> None:
    """Copy a shipped directory to ``target`` (files on disk, or inside a zip), leaving out names ``skip`` rejects."""
    target.mkdir(parents=True, exist_ok=True)
    for item in source.iterdir():
        if skip(item.name):
            continue
        if item.is_dir():
            copy_tree(item, target / item.name, skip)
        elif isinstance(item, Path):
            shutil.copyfile(item, target / item.name)
        else:
            (target / item.name).write_bytes(item.read_bytes())
