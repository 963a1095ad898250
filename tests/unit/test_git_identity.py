"""Who opsdeck acts for, read by the git command (the session name of every role it assumes): the name git
reports as the identity, and none while git has no whole identity, as GitPython's reading says."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from opsdeck.adapters.git import Git
from opsdeck.errors import OpsdeckError


@pytest.fixture()
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A home of its own (git and GitPython both read ~/.gitconfig), empty to start with."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / ".config"))
    monkeypatch.delenv("GIT_CONFIG_GLOBAL", raising=False)
    return home


@pytest.fixture()
def repo(tmp_path: Path, home: Path) -> Path:
    root = tmp_path / "deck"
    subprocess.run(["git", "init", "-q", str(root)], check=True)
    return root


def _config(root: Path, *args: str) -> None:
    subprocess.run(["git", "-C", str(root), "config", *args], check=True)


def test_the_name_is_the_one_of_the_identity(repo: Path) -> None:
    _config(repo, "user.name", "Carol Example (on call)")
    _config(repo, "user.email", "carol@shop.example")
    git = Git(repo)
    assert git.user_name() == "Carol Example (on call)"
    assert git.identity() == "Carol Example (on call) <carol@shop.example>"


def test_a_name_without_an_email_is_no_identity(repo: Path) -> None:
    _config(repo, "user.name", "Carol Example")
    git = Git(repo)
    assert git.user_name() is None
    with pytest.raises(OpsdeckError):
        git.identity()


def test_the_repositorys_setting_wins_over_the_users(repo: Path, home: Path) -> None:
    (home / ".gitconfig").write_text("[user]\n\tname = Global Name\n\temail = global@shop.example\n")
    _config(repo, "user.name", "Repo Name")
    git = Git(repo)
    assert git.user_name() == "Repo Name"
    assert git.identity() == "Repo Name <global@shop.example>"
