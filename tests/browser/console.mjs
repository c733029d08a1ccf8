// The console in a real browser (Debian's chromium through playwright-core) against a real iam
// and wechat-sim, started by run.sh. One administrator's flow, axe on every page, and
// screenshots of every page at 1280 and 390 px wide into $ARTIFACTS.
import { chromium } from "playwright-core";
import AxeBuilder from "@axe-core/playwright";
import assert from "node:assert/strict";
import { mkdirSync } from "node:fs";

const IAM = process.env.IAM_BASE;
const SIM = process.env.SIM_BASE;
const ADMIN_PASSWORD = process.env.ADMIN_PASSWORD;
const APPID = process.env.CONSOLE_APPID;
const APPSECRET = process.env.CONSOLE_APPSECRET;
const ARTIFACTS = process.env.ARTIFACTS;
for (const [k, v] of Object.entries({ IAM, SIM, ADMIN_PASSWORD, APPID, APPSECRET, ARTIFACTS })) {
  assert.ok(v, `${k} is not set (run tests/browser/run.sh)`);
}
mkdirSync(ARTIFACTS, { recursive: true });

const browser = await chromium.launch({ executablePath: "/usr/bin/chromium", args: ["--no-sandbox"] });
const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
const page = await context.newPage();
const problems = [];
// A 4xx answer to a form the flow sends wrong on purpose is logged by chromium; anything else
// is a problem.
page.on("console", (m) => {
  if (m.type() !== "error") return;
  if (/Failed to load resource: the server responded with a status of 40[01]/.test(m.text())) return;
  problems.push(`console error on ${page.url()}: ${m.text()}`);
});
page.on("pageerror", (e) => problems.push(`script error on ${page.url()}: ${e.message}`));

const checked = [];
/** axe finds no serious or critical violation; screenshots at both widths. */
async function look(name) {
  const results = await new AxeBuilder({ page }).analyze();
  const bad = results.violations.filter((v) => v.impact === "serious" || v.impact === "critical");
  assert.deepEqual(
    bad.map((v) => `${v.id}: ${v.help} (${v.nodes.map((n) => n.target.join(" ")).join(", ")})`),
    [],
    `axe on ${name} (${page.url()})`,
  );
  for (const width of [1280, 390]) {
    await page.setViewportSize({ width, height: 900 });
    // caret "initial": hiding the caret injects a style, which the CSP (rightly) refuses.
    await page.screenshot({ path: `${ARTIFACTS}/${name}-${width}.png`, fullPage: true, caret: "initial" });
    // A list is a table where its frame is wide and a card per row where it is narrow (a
    // phone, a narrow column): at either width nothing scrolls sideways, the page or a list.
    const wide = await page.evaluate(() => [
      ...(document.documentElement.scrollWidth > innerWidth ? ["the page"] : []),
      ...[...document.querySelectorAll("table.cards")]
        .filter((t) => t.parentElement.scrollWidth > t.parentElement.clientWidth + 1)
        .map((t) => `a list of ${t.rows.length - 1} rows`),
    ]);
    assert.deepEqual(wide, [], `at ${width} px on ${name}, these scroll sideways`);
  }
  await page.setViewportSize({ width: 1280, height: 900 });
  checked.push(name);
}

async function json(url, init) {
  const r = await fetch(url, init);
  return { status: r.status, body: await r.json() };
}

// 1. A wrong password shows an error.
await page.goto(`${IAM}/`);
assert.match(page.url(), /\/console\/login$/);
await page.fill("#username", "admin");
await page.fill("#password", "not-the-password");
await page.click("button[type=submit]");
assert.equal(await page.textContent("[role=alert]"), "Wrong username or password.");
await look("login-error");

// 2. The built-in administrator signs in.
await page.fill("#username", "admin");
await page.fill("#password", ADMIN_PASSWORD);
await page.click("button[type=submit]");
await page.waitForURL(`${IAM}/console/`);
assert.equal(await page.textContent("h1"), "Dashboard");
const cookies = await context.cookies();
const session = cookies.find((c) => c.name === "iam_console");
assert.ok(session && session.httpOnly && session.sameSite === "Strict", JSON.stringify(session));
await look("dashboard-empty");

// 3. Connect a mini program: test the credentials (a wrong secret, then the right one), connect.
await page.click("nav >> text=Connect a mini program");
await page.waitForURL(`${IAM}/console/connect`);
await page.fill("#organization", "shop");
await page.fill("#appid", APPID);
await page.fill("#appsecret", "ffffffffffffffffffffffffffffffff");
await page.fill("#application", "shop-mp");
await page.click("text=Test WeChat credentials");
await page.waitForSelector("#appsecret-error");
const wrong = await page.textContent("#appsecret-error");
assert.match(wrong, /40125/);
assert.match(wrong, /APPSECRET/);
await look("connect-wrong-secret");
await page.fill("#appsecret", APPSECRET);
await page.click("text=Test WeChat credentials");
await page.waitForSelector("[role=status]");
assert.match(await page.textContent("[role=status]"), /accepted/);
await page.fill("#appsecret", APPSECRET);
await page.click("button:text-is('Connect')");
await page.waitForSelector("pre code");
const clientId = (await page.textContent("p.mono")).trim();
assert.equal(clientId.length, 20);
assert.match(await page.textContent("pre code"), new RegExp(`${IAM}/oauth/token`));
await look("connected");

// 4. A user signs in through the simulator and the token endpoint.
const login = await json(`${SIM}/sim/login`, {
  method: "POST",
  body: JSON.stringify({ appid: APPID, user: "browser-user" }),
  headers: { "content-type": "application/json" },
});
const { code, openid } = login.body;
const token = await json(`${IAM}/oauth/token`, {
  method: "POST",
  body: new URLSearchParams({ tag: "wechat_miniprogram", client_id: clientId, code }),
});
assert.equal(token.status, 200, JSON.stringify(token.body));
const bearer = token.body.access_token;
const account = await fetch(`${IAM}/api/get-account`, { headers: { authorization: `Bearer ${bearer}` } });
assert.equal(account.status, 200);

// 5. The dashboard counts it.
await page.click("nav >> text=Dashboard");
await page.waitForURL(`${IAM}/console/`);
assert.notEqual((await page.textContent(".stat b")).trim(), "0");
await look("dashboard");

// 6. Find the user by openid, open them, revoke their session: their token is refused.
await page.click("nav >> text=Users");
await page.waitForURL(/\/console\/users/);
await page.selectOption("select[name=organization]", "shop");
await page.click("button:text-is('Search')");
await page.waitForURL(/organization=shop/);
await look("users");
// A page past the last (a link kept while the list shrank) says so and leads back.
await page.goto(`${IAM}/console/users?organization=shop&p=9`);
assert.match(await page.textContent("main"), /Nothing on page 9: the last page is 1\./);
await look("users-past-end");
await page.click("a[rel=prev]");
await page.waitForURL(/p=1$/);
// A search by a column the console does not offer: a 400 that says so, the list beside it.
const badSearch = await page.goto(`${IAM}/console/users?organization=shop&by=password&q=x`);
assert.equal(badSearch.status(), 400);
assert.match(await page.textContent("main"), /Cannot search by "password": the list below is not searched\./);
await look("users-bad-search");
await page.selectOption("select[name=organization]", "shop");
await page.selectOption("select[name=by]", "openid");
await page.fill("input[name=q]", openid);
await page.click("button:text-is('Search')");
await page.waitForURL(/by=openid/);
const rows = await page.$$("tbody tr");
assert.equal(rows.length, 1);
await page.click("tbody a");
await page.waitForURL(/\/console\/users\/shop\//);
assert.ok((await page.content()).includes(openid));
// Beside the profile, the identities' column is narrow even on a wide screen: they are cards
// there (an openid on one line), while the full-width sessions stay a table.
const shown = async (h) =>
  page.$eval(`section:has(#${h}) tbody tr`, (tr) => getComputedStyle(tr).display);
assert.equal(await shown("h-ids"), "block", "identities as cards at 1280 px");
assert.equal(await shown("h-sessions"), "table-row", "sessions as a table at 1280 px");
await look("user");
await page.click("button:text-is('Revoke')");
await page.waitForSelector("[role=status]");
assert.match(await page.textContent("[role=status]"), /revoked/);
const refused = await fetch(`${IAM}/api/get-account`, { headers: { authorization: `Bearer ${bearer}` } });
assert.equal(refused.status, 401, "the revoked session's Bearer token is refused");

// 7. The audit log shows the sign-in and the revocation.
await page.click("nav >> text=Audit log");
await page.waitForURL(/\/console\/records/);
const log = await page.textContent("main");
assert.match(log, /signin-wechat-miniprogram/);
assert.match(log, /revoke-session/);
await look("records");

// The configuration pages, and an edit form whose error appears beside its field.
for (const [nav, name] of [["Applications", "applications"], ["Providers", "providers"], ["Organizations", "organizations"], ["Certs", "certs"]]) {
  await page.click(`nav >> text=${nav}`);
  await page.waitForURL(new RegExp(`/console/${name}$`));
  await look(name);
}
await page.goto(`${IAM}/console/applications/shop-mp`);
assert.equal(await page.inputValue("#f-clientSecret"), "***");
await page.fill("#f-expireInHours", "-5");
await page.click("button:text-is('Save')");
await page.waitForSelector("#e-expireInHours");
await look("application-error");

// 8. Log out.
await page.click("button:text-is('Sign out')");
await page.waitForURL(/\/console\/login$/);
await page.goto(`${IAM}/console/users`);
assert.match(page.url(), /\/console\/login$/, "signed out: the console asks for a sign-in again");

// The API's own page: Swagger UI renders under its CSP.
await page.goto(`${IAM}/swagger`);
await page.waitForSelector(".swagger-ui .info .title", { timeout: 30000 });
assert.match(await page.textContent(".swagger-ui .info .title"), /Hanzo IAM/);

assert.deepEqual(problems, [], "no script or console error on any page");
await browser.close();
console.log(`console in chromium: ok; axe found nothing serious on ${checked.length} pages; screenshots in ${ARTIFACTS}`);
