// The Ask view: a question to a model, grounded in collections when named, its answer streamed token by
// token. The answer's label arrives first; the banners rise to it before any of the answer is shown.

import { ApiError, call, json } from "./api.js";

const $ = (id) => document.getElementById(id);
const ANSWER = "ask:answer";

/** Server-sent events of a streamed answer: each `data:` payload, parsed, until `[DONE]`. */
async function* events(response) {
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += decoder.decode(value, { stream: true });
    let end;
    while ((end = buffer.indexOf("\n\n")) >= 0) {
      const event = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      const data = event
        .split("\n")
        .filter((line) => line.startsWith("data:"))
        .map((line) => line.slice(5).trimStart())
        .join("\n");
      if (data === "[DONE]") return;
      if (data) yield JSON.parse(data);
    }
  }
}

export class AskView {
  constructor(session, screen) {
    this.session = session;
    this.screen = screen;
    this.running = null;
  }

  async open() {
    $("request-label").value = this.session.marking;
    const models = await json("/v1/models");
    const select = $("model");
    select.replaceChildren(
      ...models.data.map((model) => {
        const option = document.createElement("option");
        option.value = option.textContent = model.id;
        return option;
      }),
    );
    if (!models.data.length) $("ask-error").textContent = "No model is open to you at this site.";
    $("ask-form").addEventListener("submit", (event) => {
      event.preventDefault();
      this.ask();
    });
    $("stop").addEventListener("click", () => this.running && this.running.abort());
    $("question").focus();
  }

  status(text) {
    $("ask-status").textContent = text;
  }

  async clear() {
    $("answer").textContent = "";
    $("answer").dataset.label = "";
    $("answer-marking").textContent = "";
    $("grounding").textContent = "";
    $("citations").replaceChildren();
    $("citations-title").hidden = true;
    $("answer-box").hidden = true;
    $("ask-error").textContent = "";
    await this.screen.clear(ANSWER);
  }

  async ask() {
    const question = $("question").value.trim();
    if (!question) {
      $("ask-error").textContent = "Write a question first.";
      return;
    }
    await this.clear();
    const collections = $("collections")
      .value.split(",")
      .map((name) => name.trim())
      .filter(Boolean);
    const body = {
      model: $("model").value,
      stream: true,
      max_tokens: Number($("max-tokens").value) || 512,
      messages: [{ role: "user", content: question }],
    };
    if (collections.length) body.rampart = { collections };
    const headers = {};
    const label = $("request-label").value.trim();
    if (label) headers["Rampart-Label"] = label;
    this.running = new AbortController();
    $("ask").disabled = true;
    $("stop").disabled = false;
    this.status("Asking…");
    try {
      const response = await call("/v1/chat/completions", {
        method: "POST",
        body,
        headers,
        signal: this.running.signal,
      });
      if (!response.ok) throw new ApiError(response.status, await response.json().catch(() => null));
      await this.read(response);
      this.status("");
    } catch (error) {
      if (error.name === "AbortError") this.status("Stopped.");
      else {
        this.status("");
        $("ask-error").textContent = error.message;
      }
    } finally {
      this.running = null;
      $("ask").disabled = false;
      $("stop").disabled = true;
    }
  }

  /** Shows a streamed answer: nothing of it until the banners cover its label. */
  async read(response) {
    const answer = $("answer");
    const labels = [];
    for await (const event of events(response)) {
      if (event.error) throw new ApiError(502, event);
      const extension = event.rampart || {};
      if (extension.label) {
        labels.push(extension.label);
        await this.screen.show(ANSWER, [...labels]);
        answer.dataset.label = JSON.stringify(extension.label);
        $("answer-marking").textContent = response.headers.get("Rampart-Label") || "";
        $("answer-box").hidden = false;
        this.status("Answering…");
      }
      if (extension.citations) await this.cite(extension.citations, labels);
      if (extension.grounding) this.grounding(extension.grounding);
      const delta = event.choices && event.choices[0] && event.choices[0].delta;
      if (delta && delta.content) {
        if (!labels.length) throw new ApiError(502, { error: { message: "the answer came without its label" } });
        answer.append(delta.content);
      }
    }
  }

  async cite(citations, labels) {
    labels.push(...citations.map((citation) => citation.label));
    await this.screen.show(ANSWER, [...labels]);
    const items = citations.map((citation) => {
      const item = document.createElement("li");
      item.dataset.label = JSON.stringify(citation.label);
      item.value = citation.n;
      const marking = document.createElement("span");
      marking.className = "marking";
      marking.textContent = citation.marking;
      const title = citation.title ? `${citation.title} — ` : "";
      item.append(marking, `${title}${citation.id}`);
      return item;
    });
    $("citations").replaceChildren(...items);
    $("citations-title").hidden = !items.length;
  }

  grounding(grounding) {
    const unsupported = grounding.unsupported.length;
    const removed = grounding.removed ? `, ${grounding.removed} removed` : "";
    $("grounding").textContent =
      `${grounding.sentences} sentences, ${grounding.cited} citing a source; ` +
      `${unsupported} not supported by what they cite${removed}.`;
  }
}
