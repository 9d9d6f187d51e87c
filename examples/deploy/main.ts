/**
 * A Deno Deploy app that enqueues from its request handlers and runs the tasks in the same
 * isolate through `kvq/deploy`. Run it locally:
 *
 *   deno run -A --unstable-kv --unstable-cron examples/deploy/main.ts
 *   curl -X POST 'localhost:8000/greet?name=Ada'   # → {"id":"…","name":"…"}
 *   curl 'localhost:8000/result/<id>?wait=5000'    # → {"state":"succeeded","result":"Hello, Ada!"}
 *
 * On Deploy, `Deno.openKv()` is the project's KV; locally it is a file (KVQ_KV or the default
 * location). Set KVQ_NO_NATIVE_QUEUE=1 to run as on a platform without queues.
 *
 * @module
 */
import { createDeployRunner } from "../../src/deploy/mod.ts";
import * as tasks from "./tasks.ts";

const kv = await Deno.openKv(Deno.env.get("KVQ_KV") || undefined);
const kvq = await createDeployRunner({
  kv,
  tasks,
  nativeQueue: Deno.env.get("KVQ_NO_NATIVE_QUEUE") === "1" ? false : "auto",
});

Deno.serve({
  port: Number(Deno.env.get("PORT") ?? 8000),
  hostname: "127.0.0.1",
  onListen: ({ hostname, port }) =>
    console.log(`listening on http://${hostname}:${port} (${kvq.mode})`),
}, async (request) => {
  const url = new URL(request.url);
  if (request.method === "POST" && url.pathname === "/greet") {
    const { id, name } = await kvq.queue.enqueue({
      func: "greet",
      args: [url.searchParams.get("name") ?? "world"],
      delay: Number(url.searchParams.get("delay") ?? 0) || 0,
    });
    return Response.json({ id, name }, { status: 202 });
  }
  const match = /^\/result\/([\w-]+)$/.exec(url.pathname);
  if (request.method === "GET" && match) {
    const wait = Math.min(30_000, Number(url.searchParams.get("wait") ?? 0) || 0);
    try {
      const record = await kvq.queue.wait(match[1]!, { wait });
      return Response.json({
        state: record.state,
        result: record.result ?? null,
        error: record.error,
      });
    } catch (error) {
      return Response.json({ error: (error as Error).message }, { status: 404 });
    }
  }
  return new Response("Not found", { status: 404 });
});
