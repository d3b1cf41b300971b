"""The official `openai` Python SDK asks a grounded question with `extra_body` and reads its citations."""

import pathlib
import subprocess
import tempfile

import openai
import pytest
from rampart_process import BINARY, MODEL, ROOT, free_port, require_binary_and_model, serving

EMBEDDING = ROOT / "models" / "all-MiniLM-L6-v2"
QUESTION = "Where did the 3rd Mechanised Brigade cross the river Kalna?"


@pytest.fixture(scope="module")
def client():
    require_binary_and_model()
    assert EMBEDDING.exists(), f"{EMBEDDING} is missing: run `rampart model fetch-embedding --dir {EMBEDDING}`"
    port = free_port()
    with tempfile.TemporaryDirectory() as tmp:
        config = pathlib.Path(tmp) / "rampart.toml"
        config.write_text(
            f'[server]\nlisten = "127.0.0.1:{port}"\ninsecure_dev = true\n\n'
            f'[collections]\ndir = "{tmp}/collections"\nembedding_model = "{EMBEDDING}"\n\n'
            f'[[models]]\nname = "smollm2"\nengine = "embedded"\npath = "{MODEL}"\nthreads = 2\nparallel = 2\n'
            'context = 4096\naccreditation = "NATO SECRET"\n'
        )
        examples = ROOT / "examples" / "collections" / "exercise"
        subprocess.run(
            [str(BINARY), "collection", "ingest", "--config", str(config), "exercise", str(examples)],
            check=True,
            capture_output=True,
        )
        with serving(config, port, pathlib.Path(tmp) / "stderr.log"):
            yield openai.OpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key="unused", max_retries=0)


def ask(client, **extension):
    return client.chat.completions.create(
        model="smollm2",
        messages=[{"role": "user", "content": QUESTION}],
        temperature=0,
        max_tokens=96,
        extra_body={"rampart": {"collections": ["exercise"], **extension}},
    )


def test_citations_and_grounding_are_read_from_the_answer(client):
    answer = ask(client)
    rampart = answer.model_extra["rampart"]
    assert rampart["label"]["policy"] == "NATO"
    grounding = rampart["grounding"]
    assert 0 <= grounding["cited"] <= grounding["sentences"]
    assert 0.0 <= grounding["support"] <= 1.0
    # Every sentence citing nothing given is flagged.
    assert len(grounding["unsupported"]) >= grounding["sentences"] - grounding["cited"]
    assert grounding["support"] == pytest.approx(1 - len(grounding["unsupported"]) / grounding["sentences"])
    for citation in rampart["citations"]:
        assert f"[{citation['n']}]" in answer.choices[0].message.content
        assert citation["marking"].startswith("(N")
        assert citation["id"] == f"{citation['document']}#{citation['portion']}"


def test_a_stream_ends_with_citations_and_grounding(client):
    stream = client.chat.completions.create(
        model="smollm2",
        messages=[{"role": "user", "content": QUESTION}],
        temperature=0,
        max_tokens=96,
        stream=True,
        extra_body={"rampart": {"collections": ["exercise"]}},
    )
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    last = chunks[-1].model_extra["rampart"]
    assert set(last) == {"citations", "grounding"}
    assert text == ask(client).choices[0].message.content


def test_an_unknown_collection_is_a_typed_error(client):
    with pytest.raises(openai.NotFoundError) as refused:
        client.chat.completions.create(
            model="smollm2",
            messages=[{"role": "user", "content": QUESTION}],
            extra_body={"rampart": {"collections": ["nowhere"]}},
        )
    assert refused.value.code == "collection_not_found"
