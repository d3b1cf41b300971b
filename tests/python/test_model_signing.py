"""OpenSSF model signing interoperability: the reference `model_signing` tool
verifies Rampart's signatures, and Rampart verifies the tool's, in both cases
refusing a model changed after signing and naming the file."""

import pathlib
import subprocess
import sys

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from rampart_process import BINARY

REFERENCE = pathlib.Path(sys.executable).parent / "model_signing"


def keys(tmp):
    key = ec.generate_private_key(ec.SECP256R1())
    private, public = tmp / "owner.pem", tmp / "owner.pub"
    private.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                          serialization.NoEncryption()))
    public.write_bytes(key.public_key().public_bytes(serialization.Encoding.PEM,
                                                     serialization.PublicFormat.SubjectPublicKeyInfo))
    return private, public


def model(tmp):
    root = tmp / "model"
    (root / "tokenizer").mkdir(parents=True)
    (root / "weights.gguf").write_bytes(bytes(range(256)) * 5000)
    (root / "tokenizer" / "vocab.json").write_text('{"a": 1}')
    (root / "a-b").write_text("sorted by path component, not by string")
    return root


def run(*args):
    return subprocess.run([str(a) for a in args], capture_output=True, text=True)


def test_the_reference_tool_verifies_rampart_signatures(tmp_path):
    private, public = keys(tmp_path)
    root, sig = model(tmp_path), tmp_path / "model.sig"
    signed = run(BINARY, "model", "sign", root, "--key", private, "--out", sig)
    assert signed.returncode == 0, signed.stderr
    verified = run(REFERENCE, "verify", "key", root, "--signature", sig, "--public_key", public)
    assert verified.returncode == 0, verified.stdout + verified.stderr
    (root / "tokenizer" / "vocab.json").write_text('{"a": 2}')
    refused = run(REFERENCE, "verify", "key", root, "--signature", sig, "--public_key", public)
    assert refused.returncode != 0 and "vocab.json" in refused.stdout + refused.stderr


def test_rampart_verifies_the_reference_tools_signatures(tmp_path):
    private, public = keys(tmp_path)
    root, sig = model(tmp_path), tmp_path / "model.sig"
    signed = run(REFERENCE, "sign", "key", root, "--private_key", private, "--signature", sig)
    assert signed.returncode == 0, signed.stdout + signed.stderr
    verified = run(BINARY, "model", "verify", root, "--sig", sig, "--pub", public)
    assert verified.returncode == 0, verified.stderr
    assert "3 files" in verified.stdout
    (root / "weights.gguf").write_bytes(b"swapped weights")
    (root / "extra.bin").write_bytes(b"")
    refused = run(BINARY, "model", "verify", root, "--sig", sig, "--pub", public)
    assert refused.returncode != 0
    assert "changed: weights.gguf" in refused.stderr and "not signed: extra.bin" in refused.stderr, refused.stderr
