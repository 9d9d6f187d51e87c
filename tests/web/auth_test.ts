import { test } from "../_deadline.ts";
import assert from "node:assert/strict";
import { isCrossOrigin, validateToken } from "../../src/web/auth.ts";
import { safePath } from "../../src/web/app.ts";
import { ORIGIN, withDashboard } from "./_helpers.ts";

const TOKEN = "test-token-0123456789abcdef";

test("safePath() refuses paths a browser would send to another host", () => {
  for (
    const bad of [
      "/\t/evil.example",
      "/\n/evil.example",
      "//evil.example",
      "/\\evil",
      "http://x/",
      "/\r\n/x",
      "/a\u0000",
    ]
  ) {
    assert.equal(safePath(bad), null, JSON.stringify(bad));
  }
  assert.equal(safePath("/tasks?state=failed"), "/tasks?state=failed");
});

test("Dashboard login never redirects off the dashboard, and a newline in next is no 500", async () => {
  await withDashboard({ token: TOKEN }, async ({ client }) => {
    const page = await client.page(`/login?next=${encodeURIComponent("/\t/evil.example")}`);
    assert.equal(page.status, 200);
    assert.match(page.body, /name="next" value="\/"/);
    for (const next of ["/\t/evil.example", "/\n/evil.example", "/ok\nSet-Cookie: x=1"]) {
      const res = await client.request("/login", {
        method: "POST",
        headers: { "content-type": "application/x-www-form-urlencoded", origin: ORIGIN },
        body: new URLSearchParams({ token: TOKEN, next }).toString(),
      });
      assert.equal(res.status, 303, JSON.stringify(next));
      assert.equal(res.headers.get("location"), "/", JSON.stringify(next));
    }
  });
});

test("isCrossOrigin() compares the scheme as well as the host", () => {
  const req = (origin: string, extra: Record<string, string> = {}) =>
    new Request("http://127.0.0.1:8080/tasks/x/retry", {
      method: "POST",
      headers: { host: "127.0.0.1:8080", origin, ...extra },
    });
  assert.equal(isCrossOrigin(req("http://127.0.0.1:8080")), false);
  assert.equal(isCrossOrigin(req("https://127.0.0.1:8080")), true);
  assert.equal(isCrossOrigin(req("ftp://127.0.0.1:8080")), true);
  // Behind a proxy that ends TLS, the browser's scheme comes in X-Forwarded-Proto.
  assert.equal(
    isCrossOrigin(req("https://127.0.0.1:8080", { "x-forwarded-proto": "https" })),
    false,
  );
  assert.equal(isCrossOrigin(req("http://evil.example")), true);
});

test("validateToken() refuses a token of spaces or with control characters", () => {
  assert.throws(() => validateToken("0.0.0.0", " ".repeat(16)), /must not contain spaces/);
  assert.throws(() => validateToken("0.0.0.0", `${"a".repeat(16)}\n`), /must not contain spaces/);
  assert.equal(validateToken("0.0.0.0", TOKEN), TOKEN);
});
