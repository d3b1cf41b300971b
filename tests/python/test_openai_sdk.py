"""The official `openai` Python SDK against a real `rampart serve` with the default model."""

import pathlib
import tempfile

import openai
import pytest
from rampart_process import MODEL, free_port, require_binary_and_model, serving


@pytest.fixture(scope="module")
def client():
    require_binary_and_model()
    port = free_port()
    with tempfile.TemporaryDirectory() as tmp:
        config = pathlib.Path(tmp) / "rampart.toml"
        config.write_text(
            f'[server]\nlisten = "127.0.0.1:{port}"\ninsecure_dev = true\n\n'
            f'[[models]]\nname = "smollm2"\nengine = "embedded"\npath = "{MODEL}"\nthreads = 2\nparallel = 2\ncontext = 1024\n'
        )
        with serving(config, port, pathlib.Path(tmp) / "stderr.log"):
            yield openai.OpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key="unused", max_retries=0)


def test_chat(client):
    answer = client.chat.completions.create(
        model="smollm2",
        messages=[{"role": "user", "content": "Which city is the capital of France?"}],
        temperature=0,
    )
    assert "Paris" in answer.choices[0].message.content
    assert answer.choices[0].finish_reason == "stop"
    assert answer.usage.total_tokens == answer.usage.prompt_tokens + answer.usage.completion_tokens


def test_streaming_matches_non_streaming(client):
    messages = [{"role": "user", "content": "Name three colours."}]
    whole = client.chat.completions.create(model="smollm2", messages=messages, temperature=0, max_tokens=40)
    stream = client.chat.completions.create(
        model="smollm2", messages=messages, temperature=0, max_tokens=40, stream=True, stream_options={"include_usage": True}
    )
    pieces, usage, finish = [], None, None
    for chunk in stream:
        if chunk.usage is not None:
            usage = chunk.usage
        for choice in chunk.choices:
            pieces.append(choice.delta.content or "")
            finish = choice.finish_reason or finish
    assert "".join(pieces) == whole.choices[0].message.content
    assert finish == whole.choices[0].finish_reason
    assert usage.completion_tokens == whole.usage.completion_tokens


def test_models_list(client):
    assert [m.id for m in client.models.list()] == ["smollm2"]


def test_errors_are_typed(client):
    with pytest.raises(openai.NotFoundError) as missing:
        client.chat.completions.create(model="gpt-9", messages=[{"role": "user", "content": "hi"}])
    assert missing.value.body["code"] == "model_not_found"
    with pytest.raises(openai.BadRequestError) as bad:
        client.chat.completions.create(model="smollm2", messages=[{"role": "user", "content": "hi"}], temperature=7)
    assert bad.value.body["param"] == "temperature"
