"""The `openai` Python SDK with bearer tokens against the site `rampart dev init` makes:
HTTPS with the development CA, the default model, labelled answers and refusals."""

import pathlib
import ssl
import subprocess
import tempfile

import openai
import pytest
from rampart_process import BINARY, MODEL, free_port, require_binary_and_model, serving

@pytest.fixture(scope="module")
def site():
    require_binary_and_model()
    port = free_port()
    with tempfile.TemporaryDirectory() as tmp:
        pki = pathlib.Path(tmp) / "dev"
        subprocess.run(
            [str(BINARY), "dev", "init", str(pki), "--listen", f"127.0.0.1:{port}", "--model", str(MODEL)],
            check=True,
            capture_output=True,
        )
        with serving(pki / "rampart.toml", port, pathlib.Path(tmp) / "stderr.log"):
            yield pki, port


def client_for(site, principal=None, token=None):
    pki, port = site
    token = token or (pki / "tokens" / f"{principal}.jwt").read_text().strip()
    http = openai.DefaultHttpxClient(verify=ssl.create_default_context(cafile=str(pki / "ca.pem")))
    return openai.OpenAI(base_url=f"https://localhost:{port}/v1", api_key=token, http_client=http, max_retries=0)


def test_chat_with_a_token_is_answered_and_labelled(site):
    client = client_for(site, "gbr-secret")
    raw = client.chat.completions.with_raw_response.create(
        model="smollm2",
        messages=[{"role": "user", "content": "Which city is the capital of France?"}],
        temperature=0,
        extra_headers={"Rampart-Label": "NATO SECRET"},
    )
    assert raw.headers["rampart-label"] == "NATO SECRET"
    answer = raw.parse()
    assert "Paris" in answer.choices[0].message.content
    assert answer.model_extra["rampart"]["label"]["classification"] == "SECRET"


def test_streamed_answer_carries_the_label_first(site):
    client = client_for(site, "usa-secret")
    chunks = list(
        client.chat.completions.create(
            model="smollm2", messages=[{"role": "user", "content": "Say hello."}], max_tokens=8, stream=True
        )
    )
    assert chunks[0].model_extra["rampart"]["label"]["classification"] == "UNCLASSIFIED"
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)


def test_models_are_listed_for_the_caller(site):
    assert [m.id for m in client_for(site, "deu-confidential").models.list()] == ["smollm2"]


def test_refusals_are_openai_errors(site):
    client = client_for(site, "deu-confidential")
    with pytest.raises(openai.PermissionDeniedError) as refused:
        client.chat.completions.create(
            model="smollm2",
            messages=[{"role": "user", "content": "Summarise the plan."}],
            extra_headers={"Rampart-Label": "NATO SECRET"},
        )
    assert refused.value.status_code == 403
    assert refused.value.code == "label_exceeds_clearance"

    with pytest.raises(openai.AuthenticationError) as unknown:
        client_for(site, token="not-a-token").models.list()
    assert unknown.value.code == "invalid_token"
