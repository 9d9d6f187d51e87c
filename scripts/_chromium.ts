/**
 * Debian's Chromium for the dashboard's browser test and benchmark: where it is and the flags
 * it needs on a machine with no outside network (without them it tries Google's hosts).
 *
 * @module
 */

/** Debian's Chromium (`apt-get install -y chromium`). */
export const CHROMIUM = "/usr/bin/chromium";

/** Launch flags: headless, as root, and quiet on a closed network. */
export const CHROMIUM_ARGS: readonly string[] = Object.freeze([
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
]);
