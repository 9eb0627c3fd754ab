// Drives HotPlex with the official, unmodified @opencode-ai/sdk client (the version pinned in
// package.json): create a session, prompt it synchronously, prompt it asynchronously while
// reading /event, answer the permission request the turn raises, read the history.
// Usage: node opencode_sdk_flow.mjs <baseUrl> <apiKey>; prints one JSON report on stdout.
import { createOpencodeClient } from "@opencode-ai/sdk";

const [baseUrl, apiKey] = process.argv.slice(2);
const basic = (password) =>
  "Basic " + Buffer.from(`opencode:${password}`).toString("base64");
const client = createOpencodeClient({ baseUrl, headers: { Authorization: basic(apiKey) } });
const report = {};
const deadline = setTimeout(() => {
  console.log(JSON.stringify({ ...report, timedOut: true }));
  process.exit(3);
}, 20000);

function must(result, what) {
  if (result.error !== undefined || !result.response?.ok) {
    throw new Error(`${what}: HTTP ${result.response?.status} ${JSON.stringify(result.error)}`);
  }
  return result.data;
}

// a key HotPlex does not know gets 401
const stranger = createOpencodeClient({ baseUrl, headers: { Authorization: basic("wrong") } });
report.strangerStatus = (await stranger.session.list()).response.status;

const controller = new AbortController();
const events = await client.event.subscribe({ signal: controller.signal });
const seen = [];
const waiters = [];
(async () => {
  try {
    for await (const event of events.stream) {
      seen.push(event);
      for (const waiter of [...waiters]) {
        if (waiter.match(event)) {
          waiters.splice(waiters.indexOf(waiter), 1);
          waiter.resolve(event);
        }
      }
    }
  } catch (error) {
    if (!controller.signal.aborted) report.streamError = String(error);
  }
})();
const next = (match) =>
  new Promise((resolve) => {
    const found = seen.find(match);
    if (found) resolve(found);
    else waiters.push({ match, resolve });
  });

await next((e) => e.type === "server.connected");
const session = must(await client.session.create({ body: { title: "sdk flow" } }), "create");
report.session = session;
report.got = must(await client.session.get({ path: { id: session.id } }), "get");
report.listed = must(await client.session.list(), "list").map((s) => s.id);

report.sync = must(
  await client.session.prompt({
    path: { id: session.id },
    body: { parts: [{ type: "text", text: "hello from the sdk" }] },
  }),
  "prompt",
);

const asyncResult = await client.session.promptAsync({
  path: { id: session.id },
  body: { parts: [{ type: "text", text: "run a tool" }] },
});
report.asyncStatus = asyncResult.response.status;
const asked = await next((e) => e.type === "permission.updated");
report.asked = asked.properties;
must(
  await client.postSessionIdPermissionsPermissionId({
    path: { id: session.id, permissionID: asked.properties.id },
    body: { response: "once" },
  }),
  "permission",
);
report.replied = (await next((e) => e.type === "permission.replied")).properties;
report.completedTool = (
  await next(
    (e) =>
      e.type === "message.part.updated" &&
      e.properties.part.type === "tool" &&
      e.properties.part.state.status === "completed",
  )
).properties.part;
await next((e) => e.type === "session.idle" && seen.filter((x) => x.type === "session.idle").length >= 2);
report.messages = must(await client.session.messages({ path: { id: session.id } }), "messages");
report.eventTypes = seen.map((e) => e.type);
report.deltas = seen
  .filter((e) => e.type === "message.part.updated" && typeof e.properties.delta === "string")
  .map((e) => e.properties.delta);
report.missing = (await client.session.get({ path: { id: "ses_nope" } })).response.status;

controller.abort();
clearTimeout(deadline);
console.log(JSON.stringify(report));
process.exit(0);
