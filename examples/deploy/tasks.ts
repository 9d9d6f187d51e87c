/**
 * Tasks of the Deploy example: plain exported functions.
 *
 * @module
 */

/** Greets someone after a short pause (as if sending an email). */
export async function greet(name: string): Promise<string> {
  await new Promise((resolve) => setTimeout(resolve, 10));
  return `Hello, ${name}!`;
}

/** Adds two numbers. */
export function add(a: number, b: number): number {
  return a + b;
}
