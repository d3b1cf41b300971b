// Drives the console in Debian's headless Chromium (playwright-core, no browser download) against a
// running Rampart, as its users would. Run by crates/rampart/tests/console.rs, which starts the site and
// passes it here:
//   RAMPART_URL           the site's origin, e.g. https://127.0.0.1:8443
//   RAMPART_NOTICE        the consent notice it is configured with
//   RAMPART_TOKEN_GBR     a GBR SECRET analyst's token
//   RAMPART_TOKEN_DEU     a DEU CONFIDENTIAL analyst's token
//   RAMPART_COLLECTION    a collection both may read
//   RAMPART_SCREENSHOTS   optional: a directory to save a PNG of each view in
// Exits 1 with the failed check's message; prints one line per check passed.

import assert from "node:assert/strict";
import { chromium } from "playwright-core";

const origin = process.env.RAMPART_URL;
const screenshots = process.env.RAMPART_SCREENSHOTS;
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  args: ["--no-sandbox"],
});

/** The page under test, whose state a failure reports. */
let current = null;

/** A fresh browser context trusting nothing but what the site presents (its dev CA is not installed). */
async function open() {
  const context = await browser.newContext({ ignoreHTTPSErrors: true, viewport: { width: 1280, height: 900 } });
  const page = await context.newPage();
  const requested = [];
  page.on("request", (request) => requested.push(request.url()));
  const problems = [];
  // Refusals the tests provoke are logged by the browser as failed loads; anything else is a problem.
  page.on("console", (message) => {
    if (message.type() === "error" && !message.text().startsWith("Failed to load resource")) problems.push(message.text());
  });
  page.on("pageerror", (error) => problems.push(error.message));
  current = page;
  const response = await page.goto(`${origin}/console/`);
  return { context, page, requested, problems, response };
}

const marking = (page) => page.getAttribute("#classification-banner-top", "data-marking");
const bottomMarking = (page) => page.getAttribute("#classification-banner-bottom", "data-marking");

async function shoot(page, name) {
  if (screenshots) await page.screenshot({ path: `${screenshots}/${name}.png`, fullPage: true });
}

async function signIn(page, token) {
  await page.click("#accept-notice");
  await page.fill("#token", token);
  await page.click("#sign-in");
  await page.waitForSelector("#session-view:not([hidden])");
}

function passed(check) {
  console.log(`ok: ${check}`);
}

try {
  // The consent notice blocks everything until accepted; the page's headers hold it to its own origin.
  {
    const { context, page, requested, problems, response } = await open();
    const csp = response.headers()["content-security-policy"] || "";
    assert.match(csp, /default-src 'self'/, "the page is served with a strict CSP");
    await page.waitForSelector("#notice-view:not([hidden])");
    assert.equal(await page.textContent("#notice-text"), process.env.RAMPART_NOTICE);
    assert.equal(await page.isVisible("#token"), false, "sign-in is hidden behind the notice");
    assert.equal(await page.isVisible("#question"), false);
    assert.equal(await marking(page), "NATO UNCLASSIFIED", "the banner shows the site's label before sign-in");
    await shoot(page, "notice");
    passed("the consent notice blocks the console until accepted");

    await page.click("#accept-notice");
    await page.waitForSelector("#sign-in-view:not([hidden])");
    await page.fill("#token", "not-a-token");
    await page.click("#sign-in");
    await page.waitForFunction(() => document.querySelector("#sign-in-error").textContent.length > 0);
    assert.match(await page.textContent("#sign-in-error"), /token/i, "a bad token is refused in words");
    assert.equal(await page.isVisible("#session-view"), false);
    await shoot(page, "sign-in");
    passed("a bad token is refused with the API's message");

    // Sign in: who you are, and the banner at the session's label.
    await page.fill("#token", process.env.RAMPART_TOKEN_GBR);
    await page.click("#sign-in");
    await page.waitForSelector("#session-view:not([hidden])");
    assert.equal(await page.textContent("#who-subject"), "gbr-secret");
    assert.equal(await page.textContent("#who-nation"), "GBR");
    assert.equal(await page.textContent("#who-clearance"), "NATO SECRET");
    assert.equal(await page.inputValue("#token"), "", "the token is not left in the page");
    assert.equal(await marking(page), "NATO UNCLASSIFIED");
    const stored = await page.evaluate(() => JSON.stringify(localStorage) + JSON.stringify(sessionStorage) + document.cookie);
    assert.ok(!stored.includes(process.env.RAMPART_TOKEN_GBR.slice(0, 20)), "the token is kept in memory only");
    passed("sign-in with a token shows who you are; the banner shows the session's label");

    // Ask, grounded: the answer streams, and the banner rises to its label before it shows.
    await page.fill("#collections", process.env.RAMPART_COLLECTION);
    await page.fill("#request-label", "NATO SECRET");
    await page.fill("#max-tokens", "64");
    await page.fill("#question", "Where did the 3rd Mechanised Brigade cross the river Kalna?");
    const banners = [];
    await page.exposeFunction("bannerSeen", (marking, answerLength) => banners.push([marking, answerLength]));
    await page.evaluate(() => {
      const top = document.getElementById("classification-banner-top");
      new MutationObserver(() =>
        window.bannerSeen(top.dataset.marking, document.getElementById("answer").textContent.length),
      ).observe(top, { attributes: true, attributeFilter: ["data-marking"] });
      window.answerGrowth = [];
      new MutationObserver(() => window.answerGrowth.push(document.getElementById("answer").textContent.length)).observe(
        document.getElementById("answer"),
        { childList: true, characterData: true, subtree: true },
      );
    });
    await page.click("#ask");
    await page.waitForFunction(
      () =>
        !document.getElementById("ask").disabled &&
        (document.getElementById("answer").textContent.length > 0 || document.getElementById("ask-error").textContent),
      null,
      { timeout: 120_000 },
    );
    assert.equal(await page.textContent("#ask-error"), "", "the question is answered");
    const growth = await page.evaluate(() => window.answerGrowth);
    assert.ok(new Set(growth).size > 2, `the answer arrived in pieces (${growth.length} updates)`);
    const answerLabel = JSON.parse(await page.getAttribute("#answer", "data-label"));
    assert.equal(answerLabel.classification, "SECRET", "the answer carries its label");
    const answerMarking = await page.textContent("#answer-marking");
    assert.match(answerMarking, /^NATO SECRET/, "the answer's label is shown");
    assert.equal(await marking(page), answerMarking, "the banner rose to the answer's label");
    assert.equal(await bottomMarking(page), answerMarking);
    assert.ok(banners.length > 0 && banners[0][1] === 0, `the banner rose before any answer showed: ${JSON.stringify(banners)}`);
    const citations = await page.$$eval("#citations li", (items) => items.map((i) => JSON.parse(i.dataset.label)));
    passed(`a grounded answer streams under a banner raised to its label (${citations.length} citations)`);
    await shoot(page, "ask");

    // Everything the page fetched came from its own origin.
    const foreign = requested.filter((url) => !url.startsWith(`${origin}/`));
    assert.deepEqual(foreign, [], "every request went to the site's own origin");
    assert.deepEqual(problems, [], "no script error or CSP violation");
    passed(`all ${requested.length} requests went to the same origin`);
    await context.close();
  }

  // A DEU CONFIDENTIAL analyst asking at NATO SECRET is refused in words; the banner does not rise.
  {
    const { context, page } = await open();
    await signIn(page, process.env.RAMPART_TOKEN_DEU);
    assert.equal(await page.textContent("#who-clearance"), "NATO CONFIDENTIAL");
    await page.fill("#request-label", "NATO SECRET");
    await page.fill("#question", "What is at the river crossing?");
    await page.click("#ask");
    await page.waitForFunction(() => document.getElementById("ask-error").textContent.length > 0);
    assert.match(await page.textContent("#ask-error"), /clearance/i, "the refusal says why");
    assert.equal(await marking(page), "NATO UNCLASSIFIED", "nothing shown, nothing raised");
    assert.equal(await page.textContent("#answer"), "");
    passed("a DEU CONFIDENTIAL analyst is refused a SECRET question, and the page says why");
    await context.close();
  }
} catch (error) {
  console.error(`FAILED: ${error.message}`);
  if (current) {
    const state = await current
      .evaluate(() => ["ask-status", "ask-error", "sign-in-error", "answer"].map((id) => `${id}: ${document.getElementById(id).textContent}`))
      .catch(() => []);
    console.error(state.join("\n"));
  }
  process.exitCode = 1;
} finally {
  await browser.close();
}
