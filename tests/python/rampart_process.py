"""Starting the real `rampart` binary for the SDK tests."""

import contextlib
import os
import pathlib
import socket
import subprocess
import time

ROOT = pathlib.Path(__file__).resolve().parents[2]
BINARY = pathlib.Path(os.environ.get("RAMPART_BIN", ROOT / "target" / "debug" / "rampart"))
MODEL = pathlib.Path(os.environ.get("RAMPART_TEST_MODEL", ROOT / "models" / "SmolLM2-135M-Instruct.Q4_1.gguf"))


def require_binary_and_model():
    assert BINARY.exists(), f"{BINARY} is missing: build it with `cargo build -p rampart`"
    assert MODEL.exists(), f"{MODEL} is missing: run `rampart model fetch-default --dir models`"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def serving(config, port, log_path):
    """Runs `rampart serve --config CONFIG` until the block ends; waits until PORT accepts connections."""
    with open(log_path, "w") as log:
        process = subprocess.Popen([str(BINARY), "serve", "--config", str(config)], stderr=log)
        try:
            deadline = time.time() + 60
            while True:
                assert process.poll() is None, f"rampart exited during start-up: {pathlib.Path(log_path).read_text()}"
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                    break
                except OSError:
                    assert time.time() < deadline, "rampart did not start"
                    time.sleep(0.1)
            yield process
        finally:
            process.terminate()
            process.wait(timeout=30)
