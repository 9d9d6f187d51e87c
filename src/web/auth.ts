/**
 * Who may use the dashboard, and proof that an action came from its own pages.
 *
 * - **Token**: required when the dashboard binds anything but loopback. Sent as
 *   `Authorization: Bearer …`, or typed once into the login form, which sets an HttpOnly
 *   SameSite=Strict cookie holding an HMAC of the token under a per-process secret (the token
 *   itself never sits in the cookie; a restart signs everyone out). Tokens are compared as
 *   SHA-256 digests with `timingSafeEqual`, so neither the length nor the bytes leak through
 *   timing.
 * - **CSRF**: every action is a POST that carries `_csrf` (form field) or `X-CSRF-Token`
 *   (header) equal to the HMAC of a random nonce held in an HttpOnly SameSite=Strict cookie.
 *   A POST whose `Origin` (or `Sec-Fetch-Site`) says it came from another site is refused
 *   before anything else. A request authenticated with a Bearer header carries no ambient
 *   credential, so it needs no CSRF token (a script on another site can't set that header).
 *
 * @module
 */
import { createHash, createHmac, randomBytes, timingSafeEqual } from "node:crypto";

/** The shortest token the dashboard accepts. */
export const MIN_TOKEN_LENGTH = 16;

/** The cookie that proves a login. */
export const AUTH_COOKIE = "kvq_auth";
/** The cookie that holds the CSRF nonce. */
export const CSRF_COOKIE = "kvq_csrf";

function digest(text: string): Buffer {
  return createHash("sha256").update(text, "utf8").digest();
}

/** Compares two strings in constant time (over their SHA-256 digests, which have equal length). */
export function safeEqual(a: string, b: string): boolean {
  return timingSafeEqual(digest(a), digest(b));
}

/** Whether `hostname` is a loopback address or name. */
export function isLoopback(hostname: string): boolean {
  const h = hostname.replace(/^\[|\]$/g, "").toLowerCase();
  return h === "localhost" || h === "::1" || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(h);
}

/**
 * Checks a token for use on a bind address.
 *
 * @throws {RangeError} when a non-loopback bind has no token, or the token is too short.
 */
export function validateToken(hostname: string, token: string | null): string | null {
  // deno-lint-ignore no-control-regex
  if (token !== null && /[\s\x00-\x1f\x7f]/.test(token)) {
    throw new RangeError(
      "The dashboard token must not contain spaces or control characters. Make one with: openssl rand -hex 16",
    );
  }
  if (token !== null && token.length < MIN_TOKEN_LENGTH) {
    throw new RangeError(
      `The dashboard token must be at least ${MIN_TOKEN_LENGTH} characters: received ${token.length}. Make one with: openssl rand -hex 16`,
    );
  }
  if (token === null && !isLoopback(hostname)) {
    throw new RangeError(
      `Refusing to serve the dashboard on ${hostname} without a token: anyone who can reach it could retry, cancel and delete tasks. Pass --token (or set KVQ_DASHBOARD_TOKEN), or bind 127.0.0.1.`,
    );
  }
  return token;
}

/** Reads one cookie from a `Cookie` header. */
export function readCookie(header: string | null, name: string): string | null {
  if (!header) return null;
  for (const part of header.split(";")) {
    const eq = part.indexOf("=");
    if (eq < 0) continue;
    if (part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim();
  }
  return null;
}

/** Builds a `Set-Cookie` value: HttpOnly, SameSite=Strict, Path=/. */
export function cookie(name: string, value: string, options: { maxAge?: number } = {}): string {
  const age = options.maxAge === undefined ? "" : `; Max-Age=${options.maxAge}`;
  return `${name}=${value}; Path=/; HttpOnly; SameSite=Strict${age}`;
}

/** The outcome of checking a request's credentials. */
export type AuthResult =
  /** No token is configured: everyone on loopback may look. */
  | "open"
  /** A valid `Authorization: Bearer` header. */
  | "bearer"
  /** A valid login cookie. */
  | "cookie"
  /** No credentials, or wrong ones. */
  | "denied";

/** Token, session and CSRF checks with one per-process secret. */
export class Guard {
  readonly #token: string | null;
  readonly #secret: Buffer;

  /** @param token the dashboard token, or null for none (loopback only). */
  constructor(token: string | null) {
    this.#token = token;
    this.#secret = randomBytes(32);
  }

  /** Whether a token is required. */
  get required(): boolean {
    return this.#token !== null;
  }

  #sign(purpose: string, value: string): string {
    return createHmac("sha256", this.#secret).update(`${purpose}:${value}`).digest("base64url");
  }

  /** Whether `given` is the token. */
  checkToken(given: string): boolean {
    return this.#token !== null && safeEqual(given, this.#token);
  }

  /** The login cookie value for a correct token. */
  sessionValue(): string {
    return this.#sign("session", this.#token ?? "");
  }

  /** Checks a request's credentials. */
  authenticate(request: Request): AuthResult {
    if (this.#token === null) return "open";
    const header = request.headers.get("authorization");
    const bearer = header?.match(/^Bearer\s+(.+)$/i)?.[1]?.trim();
    if (bearer !== undefined) return this.checkToken(bearer) ? "bearer" : "denied";
    const session = readCookie(request.headers.get("cookie"), AUTH_COOKIE);
    return session !== null && safeEqual(session, this.sessionValue()) ? "cookie" : "denied";
  }

  /** A fresh CSRF nonce for the cookie. */
  newNonce(): string {
    return randomBytes(18).toString("base64url");
  }

  /** The CSRF token that goes with a nonce (hidden field / header). */
  csrfToken(nonce: string): string {
    return this.#sign("csrf", nonce);
  }

  /** Whether `token` matches the nonce in the request's CSRF cookie. */
  checkCsrf(request: Request, token: string | null): boolean {
    const nonce = readCookie(request.headers.get("cookie"), CSRF_COOKIE);
    if (nonce === null || token === null || token === "") return false;
    return safeEqual(token, this.csrfToken(nonce));
  }
}

/**
 * Whether a state-changing request came from another site: its `Origin` names a different host
 * than the request's own, or `Sec-Fetch-Site` says `cross-site`/`same-site`.
 */
export function isCrossOrigin(request: Request): boolean {
  const site = request.headers.get("sec-fetch-site");
  if (site === "cross-site" || site === "same-site") return true;
  const origin = request.headers.get("origin");
  if (origin === null) return false;
  if (origin === "null") return true;
  let from: URL;
  try {
    from = new URL(origin);
  } catch {
    return true;
  }
  const own = request.headers.get("host") ?? new URL(request.url).host;
  if (from.host.toLowerCase() !== own.toLowerCase()) return true;
  // The scheme counts too. Behind a proxy that ends TLS, the request arrives over http and the
  // proxy says the browser's scheme in X-Forwarded-Proto.
  const scheme = request.headers.get("x-forwarded-proto")?.split(",")[0]?.trim().toLowerCase() ??
    new URL(request.url).protocol.slice(0, -1);
  return from.protocol.slice(0, -1) !== scheme;
}
