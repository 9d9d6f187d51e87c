/**
 * The `kvq` executable: CLI, cluster and (later) dashboard in one program.
 *
 * @module
 */
import process from "node:process";
import { main } from "./src/cli/main.ts";

if (import.meta.main) {
  const code = await main(process.argv.slice(2), import.meta.url);
  process.exit(code);
}
