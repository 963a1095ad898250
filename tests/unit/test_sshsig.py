"""allowed_signers as ssh-keygen reads it, with real keys and real signatures: the key inside a signature,
each line's options and namespaces, and why a listed key's signature does not verify for opsdeck."""

from __future__ import annotations

from pathlib import Path

import pytest

from opsdeck.adapters import sshsig
from opsdeck.core.types.signatures import Listing, Verified

NAMESPACE = "opsdeck-approval"


@pytest.fixture(scope="module")
def key(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("keys") / "dana"
    sshsig.new_key(path, "dana@shop.example")
    return path


def test_the_key_inside_a_signature_is_the_signers_public_key(key: Path) -> None:
    signature = sshsig.sign(str(key), NAMESPACE, b"hello")
    assert sshsig.signature_key(signature) == sshsig.public_key(str(key))
    assert sshsig.signature_key("not a signature") is None
    assert sshsig.signature_key("-----BEGIN SSH SIGNATURE-----\nU1NIU0lH\n-----END SSH SIGNATURE-----") is None


def test_lines_are_read_with_their_options_as_ssh_keygen_writes_them(tmp_path: Path) -> None:
    signers = tmp_path / "allowed_signers"
    signers.write_text(
        "# the team\n"
        "\n"
        "ann@shop.example ssh-ed25519 AAAAann ann's laptop\n"
        'ben@shop.example,b@shop.example cert-authority,namespaces="git,file",valid-after="20240101" '
        "ecdsa-sha2-nistp256 AAAAben\n"
        "not a key line\n"
        'cy@shop.example namespaces="a b" sk-ssh-ed25519@openssh.com AAAAcy\n'
    )
    ann, ben, cy = sshsig.listings(signers)
    assert (ann.number, ann.principals, ann.options, ann.key) == (3, "ann@shop.example", (), "ssh-ed25519 AAAAann")
    assert ben.number == 4 and ben.principals == "ben@shop.example,b@shop.example"
    assert ben.options == ("cert-authority", 'namespaces="git,file"', 'valid-after="20240101"')
    assert ben.key == "ecdsa-sha2-nistp256 AAAAben" and ben.namespaces == "git,file"
    assert cy.namespaces == "a b" and cy.key == "sk-ssh-ed25519@openssh.com AAAAcy"
    assert ann.namespaces is None and ann.permits(NAMESPACE)
    # Its other options stay where they were; opsdeck's namespace joins the team's.
    assert ben.with_namespace(NAMESPACE) == (
        'ben@shop.example,b@shop.example cert-authority,namespaces="git,file,opsdeck-approval",'
        'valid-after="20240101" ecdsa-sha2-nistp256 AAAAben'
    )
    assert sshsig.listings(tmp_path / "missing") == []


@pytest.mark.parametrize(
    ("patterns", "permitted"),
    [
        ("git", False),
        ("git,opsdeck-approval", True),
        ("git,opsdeck-*", True),
        ("opsdeck-approva?", True),
        ("*,!opsdeck-approval", False),
        ("*", True),
    ],
)
def test_namespaces_are_an_openssh_pattern_list(patterns: str, permitted: bool) -> None:
    listing = Listing(1, "dana@shop.example", (f'namespaces="{patterns}"',), "ssh-ed25519 AAAA")
    assert listing.permits(NAMESPACE) is permitted


def test_a_key_listed_for_git_only_is_told_apart_from_a_stranger(key: Path, tmp_path: Path) -> None:
    public = sshsig.public_key(str(key))
    signers = tmp_path / "allowed_signers"
    signature = sshsig.sign(str(key), NAMESPACE, b"payload")

    signers.write_text(f'dana@shop.example namespaces="git" {public}\n')
    refused = sshsig.verify(signers, NAMESPACE, signature, b"payload")
    assert not refused.valid and refused.principal == "dana@shop.example"
    assert [listing.number for listing in refused.listed] == [1]
    assert refused.problem == (
        'its key is in allowed_signers for dana@shop.example (line 1) only for namespaces "git", not opsdeck-approval'
    )

    # ssh-keygen stays the judge: a pattern that lets opsdeck's namespace in verifies.
    signers.write_text(f'dana@shop.example namespaces="git,opsdeck-*" {public}\n')
    assert sshsig.verify(signers, NAMESPACE, signature, b"payload") == Verified(True, "dana@shop.example")

    signers.write_text(
        "erin@shop.example ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIB5dJVn2sQ6n1Ha5gbTWd0fNZVv9bpqGNv9TK1vW9f0L\n"
    )
    stranger = sshsig.verify(signers, NAMESPACE, signature, b"payload")
    assert not stranger.valid and not stranger.listed
    assert stranger.problem == "signed by a key that is not in allowed_signers"

    # Listed for opsdeck, but over other data: the signature's own fault, not the namespace's.
    signers.write_text(f'dana@shop.example namespaces="opsdeck-approval" {public}\n')
    other = sshsig.verify(signers, NAMESPACE, signature, b"other payload")
    assert not other.valid and not other.listed
    assert other.problem == "the signature does not match what it claims to sign"
