"""The deck's git adapter is shared by the deck's workers: concurrent calls must neither hang nor mix
answers (GitPython's persistent `git cat-file` pipes are not safe to use from several threads)."""

from __future__ import annotations

import json
import subprocess
import threading
import time
from pathlib import Path

from opsdeck.adapters.git import Git

IMAGES = [f"ami-{n:017x}" for n in range(1, 13)]


def _repo(root: Path) -> Git:
    git = Git.init(root)
    for env in ("dev", "staging"):
        pin = root / "envs" / env / "image.auto.tfvars.json"
        pin.parent.mkdir(parents=True)
        for image in IMAGES:
            pin.write_text(json.dumps({"image_id": image}))
            subprocess.run(["git", "-C", str(root), "add", "-A"], check=True)
            subprocess.run(["git", "-C", str(root), "commit", "-qm", f"{env} {image}"], check=True)
    return git


def _pins(git: Git, env: str) -> list[str]:
    return [json.loads(v.text or "{}")["image_id"] for v in git.history(f"envs/{env}/image.auto.tfvars.json")]


def test_concurrent_history_reads_neither_hang_nor_mix(tmp_path: Path) -> None:
    git = _repo(tmp_path)
    expected = {env: _pins(git, env) for env in ("dev", "staging")}
    assert expected["dev"] == IMAGES[::-1]
    errors: list[BaseException] = []
    wrong: list[str] = []

    def reader(env: str) -> None:
        try:
            for _ in range(25):
                got = [
                    json.loads(v.text or "{}")["image_id"] for v in git.history(f"envs/{env}/image.auto.tfvars.json")
                ]
                if got != expected[env]:
                    wrong.append(env)
                git.is_dirty(f"envs/{env}")
                git.head()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=reader, args=(env,), daemon=True) for env in ("dev", "staging") * 3]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + 60
    for thread in threads:
        thread.join(timeout=max(0.0, deadline - time.monotonic()))
    assert not any(t.is_alive() for t in threads), "a git call hung"
    assert not errors, errors[:1]
    assert not wrong


_COMMITTER = """
import json, sys
from pathlib import Path
from opsdeck.adapters.git import Git
root, env, n = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3])
git = Git(root)
pin = root / "envs" / env / "image.auto.tfvars.json"
for i in range(n):
    pin.write_text(json.dumps({"image_id": f"ami-{env}-{i}"}))
    git.is_dirty(f"envs/{env}")
    git.commit([f"envs/{env}/image.auto.tfvars.json"], f"{env} {i}")
"""


def test_two_processes_committing_their_own_environments_at_once_both_land(tmp_path: Path) -> None:
    """Two environments' operations commit in one clone at the same moment (and read its status):
    git alone refuses one of them ("index.lock exists"); the adapter takes turns across processes."""
    import sys

    git = _repo(tmp_path)
    before = int(
        subprocess.run(
            ["git", "-C", str(tmp_path), "rev-list", "--count", "HEAD"], capture_output=True, text=True, check=True
        ).stdout
    )
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _COMMITTER, str(tmp_path), env, "15"], stderr=subprocess.PIPE, text=True
        )
        for env in ("dev", "staging")
    ]
    errors = [p.communicate(timeout=120)[1] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], errors
    after = int(
        subprocess.run(
            ["git", "-C", str(tmp_path), "rev-list", "--count", "HEAD"], capture_output=True, text=True, check=True
        ).stdout
    )
    assert after - before == 30
    assert _pins(git, "dev")[0] == "ami-dev-14" and _pins(git, "staging")[0] == "ami-staging-14"
