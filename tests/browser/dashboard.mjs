// Dashboard end-to-end test: the real binary, headless Chromium, light and dark, no console errors.
// Usage: node dashboard.mjs <path to freellmapi binary> [screenshot dir]

import { chromium } from "playwright-core";
import { spawn } from "node:child_process";
import { createServer } from "node:http";
import { mkdtempSync, mkdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import assert from "node:assert/strict";

const binary = resolve(process.argv[2] ?? "../../target/debug/freellmapi");
const shots = resolve(process.argv[3] ?? "../artifacts/screenshots");
const TOKEN = "freellmapi-0123456789abcdef0123456789abcdef0123456789abcdef";
const SECRET = "gsk_browser_secret_key_9f2c";

// The gateway, with Groq pointed at the mock so a Groq key's budget can learn from its refusals (and OpenRouter,
// whose keys share limits across their models, so probing one never leaves the machine).
// `key` set to null starts it as a first start would, with a generated key and a sign-in link in the log.
function startGateway(mockUrl, key = TOKEN) {
  const dir = mkdtempSync(join(tmpdir(), "freellmapi-browser-"));
  const env = { PATH: process.env.PATH, HOST: "127.0.0.1", PORT: "0", DATABASE_URL: join(dir, "data", "db.sqlite"),
    ENCRYPTION_KEY: "ab".repeat(32), HEALTH_CHECK_INTERVAL_SECS: "0", RUST_LOG: "info",
    FREELLMAPI_BASE_URL_GROQ: mockUrl, FREELLMAPI_BASE_URL_OPENROUTER: mockUrl, RESPONSE_CACHE_TTL_SECS: "600" };
  if (key) env.FREELLMAPI_API_KEY = key;
  const child = spawn(binary, ["serve"], { cwd: dir, env });
  return new Promise((resolveUrl, reject) => {
    let log = "";
    const timer = setTimeout(() => reject(new Error(`gateway did not start:\n${log}`)), 20000);
    child.stderr.on("data", (data) => {
      log += data;
      const match = log.match(/listening on (http:\/\/[0-9.:]+)/);
      const link = log.match(/(http:\/\/[0-9.:]+\/#signin=[0-9a-f]+)/);
      if (match && (key || link)) {
        clearTimeout(timer);
        resolveUrl({ url: match[1], link: link?.[1],
          stop: () => { child.kill("SIGTERM"); rmSync(dir, { recursive: true, force: true }); } });
      }
    });
    child.on("error", (e) => reject(new Error(`cannot start ${binary}: ${e.message}`)));
    child.on("exit", (code) => reject(new Error(`gateway exited with ${code}:\n${log}`)));
  });
}

// A Groq-style refusal that states the per-minute limit.
const REFUSAL = { error: { type: "requests", code: "rate_limit_exceeded", message: "Rate limit reached for model "
  + "`llama-3.3-70b-versatile` on requests per minute (RPM): Limit 1, Used 1, Requested 1. Please try again in 1s." } };

// A minimal OpenAI-compatible upstream that streams a fixed answer, refuses "refuse me" as Groq would, breaks off
// "break off" after "Hello", and continues an answer given as a trailing assistant message.
function startMock() {
  const server = createServer((req, res) => {
    let body = "";
    req.on("data", (d) => (body += d));
    req.on("end", async () => {
      if (!req.url.endsWith("/chat/completions")) {
        res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify({ object: "list", data: [] }));
        return;
      }
      if (body.includes("refuse me")) {
        res.writeHead(429, { "content-type": "application/json", "retry-after": "1" }).end(JSON.stringify(REFUSAL));
        return;
      }
      const chunk = (delta, finish = null) => ({ id: "c1", object: "chat.completion.chunk", created: 1, model: "mock-model",
        choices: [{ index: 0, delta, finish_reason: finish }] });
      const slow = body.includes("take your time");
      const messages = JSON.parse(body).messages ?? [];
      const prefilled = messages.at(-1)?.role === "assistant";
      if (body.includes("break off") && !prefilled) {
        res.writeHead(200, { "content-type": "text/event-stream" });
        res.write(`data: ${JSON.stringify(chunk({ role: "assistant", content: "" }))}\n\n`);
        res.write(`data: ${JSON.stringify(chunk({ content: "Hello" }))}\n\n`);
        setTimeout(() => res.destroy(), 50);
        return;
      }
      const words = slow ? Array.from({ length: 100 }, (_, i) => chunk({ content: `word${i} ` }))
        : prefilled ? [chunk({ content: " from the mock" })] : [chunk({ content: "Hello" }), chunk({ content: " from the mock" })];
      const events = [chunk({ role: "assistant", content: "" }), ...words,
        chunk({}, "stop"), { id: "c1", object: "chat.completion.chunk", created: 1, model: "mock-model", choices: [],
          usage: { prompt_tokens: 12, completion_tokens: 4, total_tokens: 16 } }];
      res.writeHead(200, { "content-type": "text/event-stream" });
      for (const e of events) {
        if (res.destroyed) return;
        res.write(`data: ${JSON.stringify(e)}\n\n`);
        await new Promise((r) => setTimeout(r, slow ? 100 : 30));
      }
      res.end("data: [DONE]\n\n");
    });
  });
  return new Promise((resolveUrl) => server.listen(0, "127.0.0.1", () => resolveUrl({
    url: `http://127.0.0.1:${server.address().port}/v1`, stop: () => server.close() })));
}

async function chainOrder(page) {
  return page.$$eval("#chain > li", (items) => items.map((li) => li.getAttribute("aria-label")));
}

async function signIn(page, url, key) {
  await page.goto(url);
  await page.getByLabel("Unified key").fill(key);
  await page.getByRole("button", { name: "Sign in" }).click();
}

// A first start's sign-in link opens the dashboard signed in, once; opened again it explains and asks for the key.
async function signInByLinkOnce(browser, mock, problems) {
  const fresh = await startGateway(mock.url, null);
  try {
    const context = await browser.newContext({ viewport: { width: 1100, height: 800 } });
    const page = await context.newPage();
    page.on("console", (m) => m.type() === "error" && problems.push(`sign-in link console: ${m.text()}`));
    await page.goto(fresh.link);
    await page.getByRole("heading", { name: "Free capacity today" }).waitFor();
    assert.ok(!page.url().includes("signin"), "the code leaves the address bar");
    await page.screenshot({ path: join(shots, "signin-link.png") });
    const other = await context.newPage();
    other.on("console", (m) => m.type() === "error" && problems.push(`sign-in link console: ${m.text()}`));
    await other.evaluate(() => sessionStorage.clear()).catch(() => {});
    await other.goto(fresh.link);
    await other.getByText("This sign-in link was used already or has expired").waitFor();
    await other.getByLabel("Unified key").waitFor();
    const refused = problems.findIndex((p) => p.startsWith("sign-in link console") && p.includes("status of 401"));
    assert.notEqual(refused, -1, "the used link was refused by the server");
    problems.splice(refused, 1);
    await context.close();
  } finally {
    fresh.stop();
  }
}

async function run() {
  const mock = await startMock();
  const gateway = await startGateway(mock.url);
  const added = await fetch(`${gateway.url}/api/keys`, {
    method: "POST",
    headers: { Authorization: `Bearer ${TOKEN}`, "Content-Type": "application/json" },
    body: JSON.stringify({ platform: "custom", key: "mock-key-1", base_url: mock.url, models: ["mock-model"], label: "local mock" }),
  });
  assert.equal(added.status, 201, await added.text());
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
    args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
      "--disable-component-update", "--disable-sync"],
  });
  const problems = [];
  mkdirSync(shots, { recursive: true });
  try {
    for (const colorScheme of ["light", "dark"]) {
      const context = await browser.newContext({ colorScheme, viewport: { width: 1100, height: 800 } });
      const page = await context.newPage();
      page.on("console", (m) => m.type() === "error" && problems.push(`${colorScheme} console: ${m.text()}`));
      page.on("pageerror", (e) => problems.push(`${colorScheme} page error: ${e.message}`));
      page.on("dialog", (d) => d.accept());

      if (colorScheme === "light") {
        await signIn(page, gateway.url, "freellmapi-wrong");
        await page.getByText("That key is not the unified key").waitFor();
        await page.screenshot({ path: join(shots, "login-light.png") });
        const expected = problems.findIndex((p) => p.includes("status of 401"));
        assert.notEqual(expected, -1, "the wrong key was refused by the server");
        problems.splice(expected, 1);
      }
      await signIn(page, gateway.url, TOKEN);
      await page.getByRole("heading", { name: "Free capacity today" }).waitFor();
      await page.getByRole("link", { name: "Keys" }).click();
      await page.getByRole("heading", { name: "Provider keys" }).waitFor();
      assert.equal(page.url().includes(TOKEN), false, "the key never goes into a URL");

      if (colorScheme === "light") {
        await page.getByLabel("Platform").selectOption("groq");
        await page.getByLabel("Key", { exact: true }).fill(SECRET);
        await page.getByLabel("Label (optional)").fill("main");
        await page.getByRole("button", { name: "Add key" }).click();
        const row = page.locator("#key-rows tr", { hasText: "main" });
        await row.waitFor();
        assert.match(await row.innerText(), /groq[\s\S]*main[\s\S]*…9f2c[\s\S]*unknown/);
        assert.equal((await page.content()).includes(SECRET), false, "the key is never echoed back");
        const disabled = page.waitForResponse((r) => r.url().endsWith("/api/keys") && r.request().method() === "GET");
        await row.getByRole("checkbox").uncheck();
        await disabled;
        await page.reload();
        await page.locator("#key-rows tr", { hasText: "main" }).waitFor();
        assert.equal(await page.locator("#key-rows tr", { hasText: "main" }).getByRole("checkbox").isChecked(), false);
        const enabled = page.waitForResponse((r) => r.url().endsWith("/api/budgets"));
        await page.locator("#key-rows tr", { hasText: "main" }).getByRole("checkbox").check();
        await enabled;
        const refused = await fetch(`${gateway.url}/v1/chat/completions`, {
          method: "POST",
          headers: { Authorization: `Bearer ${TOKEN}`, "Content-Type": "application/json" },
          body: JSON.stringify({ model: "llama-3.3-70b-versatile", messages: [{ role: "user", content: "refuse me" }] }),
        });
        assert.equal(refused.status, 429, await refused.text());
        await page.reload();
        const budgets = page.locator("#key-rows tr", { hasText: "main" }).locator("ul.budgets");
        await budgets.getByText("1 unpredicted 429").waitFor();
        assert.match(await budgets.innerText(), /llama-3\.3-70b-versatile rpm 1\/1 · rpd 0\/1000[\s\S]*provider says rpm 1[\s\S]*on rpm: Rate limit reached/);

        // OpenRouter's free models share the key's limits: the key's row shows them once, for all its models.
        await page.getByLabel("Platform").selectOption("openrouter");
        await page.getByLabel("Key", { exact: true }).fill("sk-or-v1-browser-key");
        await page.getByLabel("Label (optional)").fill("shared");
        await page.getByRole("button", { name: "Add key" }).click();
        const shared = page.locator("#key-rows tr", { hasText: "shared" }).locator("ul.budgets");
        await shared.getByText("all models").waitFor();
        assert.match(await shared.innerText(), /^all models rpm 0\/20 · rpd 0\/50$/m);
      }
      await page.locator("#key-rows tr").first().waitFor();
      await page.screenshot({ path: join(shots, `keys-${colorScheme}.png`), fullPage: true });

      await page.getByRole("link", { name: "Fallback chain" }).click();
      await page.locator("#chain > li").first().waitFor();
      if (colorScheme === "light") {
        const before = await chainOrder(page);
        await page.locator("#chain > li").nth(1).focus();
        await page.keyboard.press("Alt+ArrowUp");
        const byKeyboard = await chainOrder(page);
        assert.deepEqual(byKeyboard.slice(0, 2), [before[1], before[0]], "Alt+ArrowUp moves the entry up");
        await page.locator("#chain > li").nth(2).dragTo(page.locator("#chain > li").nth(0), { targetPosition: { x: 20, y: 3 } });
        const dragged = await chainOrder(page);
        assert.equal(dragged[0], byKeyboard[2], "dragging the third entry onto the first puts it first");
        await page.getByRole("button", { name: "Save order" }).click();
        await page.getByText("Saved.").waitFor();
        await page.reload();
        await page.locator("#chain > li").first().waitFor();
        assert.deepEqual((await chainOrder(page)).slice(0, 3), dragged.slice(0, 3), "the order survives a reload");
        await page.getByRole("button", { name: "Log out" }).click();
        await page.getByLabel("Unified key").waitFor();
        await page.reload();
        await page.getByLabel("Unified key").waitFor();
        await signIn(page, gateway.url + "/#chain", TOKEN);
        await page.locator("#chain > li").first().waitFor();
        const groq = page.locator("#chain > li", { has: page.getByText("groq/llama-3.3-70b-versatile", { exact: true }) });
        assert.match(await groq.locator(".state").innerText(), /1 unpredicted 429/);
        await groq.getByText("Budgets per key").click();
        assert.match(await groq.locator("details").innerText(), /main …9f2c rpm 1\/1[\s\S]*unpredicted 429/);

        await page.getByRole("button", { name: "Add alias" }).click();
        const alias = page.locator("#aliases > li").last();
        await alias.getByLabel("Name").fill("auto");
        await alias.getByLabel("Targets").fill("groq/llama-3.3-70b-versatile");
        await page.getByRole("button", { name: "Save aliases" }).click();
        await page.getByText(/Not saved: .*reserved/).waitFor();
        // The refusal above is the one console error this test expects (the browser logs every 4xx).
        const refusal = problems.findIndex((p) => p.includes("status of 400"));
        assert.ok(refusal >= 0, "the refused save reached the server");
        problems.splice(refusal, 1);
        await alias.getByLabel("Name").fill("team-default");
        await page.getByRole("button", { name: "Save aliases" }).click();
        await page.getByText("Aliases saved.").waitFor();
        await page.reload();
        await page.locator("#aliases > li").first().waitFor();
        assert.equal(await page.locator("#aliases .alias-name").first().inputValue(), "team-default", "the alias survives a reload");
        const listed = await (await fetch(gateway.url + "/api/aliases", { headers: { Authorization: `Bearer ${TOKEN}` } })).json();
        assert.deepEqual(listed, [{ name: "team-default", targets: ["groq/llama-3.3-70b-versatile"] }]);
      }
      await page.screenshot({ path: join(shots, `chain-${colorScheme}.png`) });

      await page.getByRole("link", { name: "Clients" }).click();
      const clients = page.locator("#page-clients");
      await clients.getByRole("heading", { name: "New client key" }).waitFor();
      if (colorScheme === "light") {
        const create = async (name, fields) => {
          await clients.getByLabel("Name").fill(name);
          for (const [label, value] of fields) await clients.getByLabel(label).fill(value);
          await clients.getByRole("button", { name: "Create key" }).click();
          await page.locator("#client-rows tr", { hasText: name }).waitFor();
          return page.locator("#client-key").innerText();
        };
        const key = await create("partner", [["Models (comma-separated)", "mock-model"], ["Requests per day", "100"]]);
        assert.match(key, /^freellmapi-[0-9a-f]{32}$/, "the new key is shown once");
        await clients.getByRole("button", { name: "Copy" }).click();
        const asClient = (model) => fetch(`${gateway.url}/v1/chat/completions`, {
          method: "POST",
          headers: { Authorization: `Bearer ${key}`, "Content-Type": "application/json" },
          body: JSON.stringify({ model, stream: true, messages: [{ role: "user", content: "hi" }] }),
        });
        const used = await asClient("mock-model");
        assert.equal(used.status, 200, await used.text());
        assert.equal((await asClient("auto")).status, 403, "outside the allowlist");
        await page.reload();
        const partner = page.locator("#client-rows tr", { hasText: "partner" });
        await partner.waitFor();
        assert.match(await partner.innerText(), /partner[\s\S]*…[0-9a-f]{4}[\s\S]*mock-model[\s\S]*1 \/ 100 requests, 16 tokens/);
        assert.equal((await page.content()).includes(key), false, "the key is not shown again");

        await partner.getByRole("button", { name: "Edit client partner" }).click();
        await clients.getByRole("heading", { name: "Edit client partner" }).waitFor();
        await clients.getByLabel("Requests per day").fill("50");
        await clients.getByRole("button", { name: "Save changes" }).click();
        await partner.getByText("1 / 50 requests").waitFor();

        const disabled = page.waitForResponse((r) => r.url().endsWith("/api/clients") && r.request().method() === "GET");
        await partner.getByRole("checkbox", { name: "Enable client partner" }).uncheck();
        await disabled;
        assert.equal((await asClient("mock-model")).status, 401, "a disabled key stops at once");
        const enabled = page.waitForResponse((r) => r.url().endsWith("/api/clients") && r.request().method() === "GET");
        await partner.getByRole("checkbox", { name: "Enable client partner" }).check();
        await enabled;

        await create("temporary", []);
        await clients.getByRole("button", { name: "Delete client temporary" }).click();
        await page.locator("#client-rows tr", { hasText: "temporary" }).waitFor({ state: "detached" });
        await page.reload();
        await partner.waitFor();
      }
      await page.locator("#client-rows tr").first().waitFor();
      await page.screenshot({ path: join(shots, `clients-${colorScheme}.png`), fullPage: true });

      await page.getByRole("link", { name: "Playground" }).click();
      await page.getByLabel("Model", { exact: true }).selectOption("mock-model");
      await page.getByLabel("Message", { exact: true }).fill("Say hello");
      await page.getByRole("button", { name: "Send" }).click();
      const answer = page.locator("#pg-log li.assistant").last();
      await answer.getByText("Hello from the mock").waitFor();
      await answer.getByText(/out tokens/).waitFor();
      assert.match(await answer.locator(".meta").innerText(), /via custom\/mock-model · \d+ ms · 12 in \/ 4 out tokens/);
      if (colorScheme === "light") {
        await page.getByLabel("Message", { exact: true }).fill("Count slowly, take your time");
        await page.getByRole("button", { name: "Send" }).click();
        const slow = page.locator("#pg-log li.assistant").last();
        await slow.getByText("word1 ").waitFor();
        await page.getByRole("button", { name: "Stop" }).click();
        await slow.getByText(/stopped/).waitFor();
        assert.equal(await page.getByRole("button", { name: "Send" }).isEnabled(), true, "a stopped stream frees the form");
        assert.doesNotMatch(await slow.locator(".text").innerText(), /word99/, "the stream really stopped");
      }
      await page.screenshot({ path: join(shots, `playground-${colorScheme}.png`) });

      if (colorScheme === "light") {
        // A second key for the same model, so a stream that breaks on one is continued on the other.
        const second = await fetch(`${gateway.url}/api/keys`, {
          method: "POST",
          headers: { Authorization: `Bearer ${TOKEN}`, "Content-Type": "application/json" },
          body: JSON.stringify({ platform: "custom", key: "mock-key-2", base_url: mock.url, models: ["mock-model"] }),
        });
        assert.equal(second.status, 201, await second.text());
        const broken = await fetch(`${gateway.url}/v1/chat/completions`, {
          method: "POST",
          headers: { Authorization: `Bearer ${TOKEN}`, "Content-Type": "application/json" },
          body: JSON.stringify({ model: "mock-model", stream: true, messages: [{ role: "user", content: "break off" }] }),
        });
        const text = (await broken.text()).split("\n").filter((l) => l.startsWith("data: {"))
          .map((l) => JSON.parse(l.slice(6)).choices?.[0]?.delta?.content ?? "").join("");
        assert.equal(text, "Hello from the mock", "the broken stream was continued");
        // The same question twice: the second is answered by the response cache (the mock only streams).
        for (const expected of ["miss", "hit"]) {
          const asked = await fetch(`${gateway.url}/v1/chat/completions`, {
            method: "POST",
            headers: { Authorization: `Bearer ${TOKEN}`, "Content-Type": "application/json" },
            body: JSON.stringify({ model: "mock-model", stream: true, messages: [{ role: "user", content: "ask me twice" }] }),
          });
          assert.equal(asked.status, 200);
          assert.equal(asked.headers.get("x-cache"), expected);
          assert.match(await asked.text(), /Hello from the mock|\[DONE\]/);
        }
      }

      await page.getByRole("link", { name: "Analytics" }).click();
      const served = page.locator("#an-recent tr", { hasText: "custom/mock-model" }).first();
      for (let i = 0; i < 20 && !(await served.isVisible()); i++) {
        await page.waitForTimeout(250);
        await page.getByRole("radio", { name: "24 h" }).click();
      }
      await served.waitFor();
      assert.match(await page.locator("#an-totals").innerText(), /requests/);
      await page.getByRole("radio", { name: "7 days" }).click();
      await page.locator("#an-recent tr", { hasText: "custom/mock-model" }).first().waitFor();
      if (colorScheme === "light") {
        // The request log is written off the request path: look again until a row is in.
        const logged = async (text) => {
          const row = page.locator("#an-recent tr", { hasText: text }).first();
          for (let i = 0; i < 20 && !(await row.isVisible()); i++) {
            await page.waitForTimeout(250);
            await page.getByRole("radio", { name: i % 2 ? "7 days" : "24 h" }).click();
          }
          await row.waitFor();
          return row;
        };
        const resumed = await logged("resumed after 5 characters");
        assert.match(await resumed.innerText(), /mock-model: interrupted[\s\S]*resumed after 5 characters/);
        await logged("cache (mock-model)");
      }
      await page.screenshot({ path: join(shots, `analytics-${colorScheme}.png`), fullPage: true });

      await page.getByRole("link", { name: "Capacity" }).click();
      const groqRow = page.locator("#cap-platforms tr", { hasText: "groq" });
      await groqRow.waitFor();
      assert.match(await groqRow.innerText(), /[\d,]+ of [\d,]+ used, [\d,]+ left/, "groq's daily budgets, summed");
      assert.match(await groqRow.getByRole("meter").first().getAttribute("aria-label"), /groq requests today/);
      assert.match(await page.locator("#cap-total").innerText(), /requests and .* tokens left today/);
      const openrouter = page.locator("#cap-platforms tr", { hasText: "openrouter" });
      assert.match(await openrouter.innerText(), /of 50 used/, "a key's shared daily limit caps what its models add up to");
      if (colorScheme === "light") {
        // The stream broken off above benched the mock's model for a while; the page names it and says until when.
        assert.match(await page.locator("#cap-trouble").innerText(), /custom\/mock-model benched until \d/,
          "a benched model is listed with when it is back");
      }
      await page.screenshot({ path: join(shots, `capacity-${colorScheme}.png`), fullPage: true });

      await page.setViewportSize({ width: 390, height: 800 });
      await page.getByRole("link", { name: "Keys" }).click();
      await page.locator("#key-rows tr").first().waitFor();
      await page.screenshot({ path: join(shots, `keys-phone-${colorScheme}.png`), fullPage: true });
      await context.close();
    }
    await signInByLinkOnce(browser, mock, problems);
  } finally {
    await browser.close();
    gateway.stop();
    mock.stop();
  }
  assert.deepEqual(problems, [], "no console errors");
  console.log(`dashboard tests passed; screenshots in ${shots}`);
}

run().catch((e) => {
  console.error(e);
  process.exit(1);
});
