"""Shared fixtures. Fixtures that start real parts (Xvfb, servers) live in tests/fixtures/ modules."""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path

import pytest

# Fixture modules that start real parts (Xvfb) or the tests' OpenAI stub server; `tests/` and `tests/fixtures/`
# are packages so these import by name.
pytest_plugins = ["tests.fixtures.xserver", "tests.fixtures.openai_stub"]

ROOT = Path(__file__).resolve().parent.parent

# A harness that starts the tests in the background (`nohup ... &`, or `cmd &` in a script without job control)
# hands them SIGINT *ignored*, and an ignored signal stays ignored across fork and exec: the `visagent run` and
# `visagent ui` the tests start would never see the Ctrl-C the tests send. A handled signal is reset to the
# default in a child, which Python turns into KeyboardInterrupt, as at a terminal.
if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)
VENV_BIN = Path(sys.executable).parent


@pytest.fixture
def visagent_bin() -> str:
    """Path of the installed `visagent` console script."""
    path = VENV_BIN / "visagent"
    assert path.exists(), f"visagent console script not found at {path}; run scripts/setup.sh"
    return str(path)


@pytest.fixture
def clean_env(tmp_path, monkeypatch):
    """An environment with no VISAGENT_* variables, a home and a working directory of its own."""
    for key in list(os.environ):
        if key.startswith("VISAGENT_") or key == "OPENAI_API_KEY":
            monkeypatch.delenv(key)
    home = tmp_path / "home"
    work = tmp_path / "work"
    home.mkdir()
    work.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.chdir(work)
    return {"home": home, "work": work}


@pytest.fixture(scope="session")
def random_tiny(tmp_path_factory) -> Path:
    """A random-weight tiny checkpoint (`engine.tiny.build_tiny_checkpoint`, 4 layers, full prompt profile).

    For plumbing tests whose checks need an input-sensitive model (different prompts or seeds give different
    text, so a mix-up between requests would show): the shipped tiny checkpoint is trained, and its greedy
    answers to unrelated prompts are often the same tool call."""
    from engine.tiny import build_tiny_checkpoint
    from visagent.training.corpus import agent_corpus

    out = tmp_path_factory.mktemp("random-tiny") / "tiny"
    return build_tiny_checkpoint(out, agent_corpus(seed=0).texts, seed=0, num_hidden_layers=4,
                                 full_attention_interval=2, max_pixels=256_000)
