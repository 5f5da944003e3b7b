// Runs inside the sched_ext VM: the scripted LLM (test/helpers/llm-server.ts) on 127.0.0.1 for
// schedctld to consult. It writes its port to PORT_FILE and serves until killed. The guest has
// no network; this server is the only model it can reach.
//
//   node daemon-llm.js PORT_FILE
import { writeFileSync } from "node:fs";
import { advisor, startLlmServer } from "../../helpers/llm-server.ts";
import { LLM_BROKEN, LLM_FIXED } from "./daemon-llm-policies.ts";

const [portFile] = process.argv.slice(2);
const write = (policy: { name: string; source: string }, rationale: string) => ({
  action: "write",
  name: policy.name,
  source: policy.source,
  rationale,
  confidence: 0.8,
});
const server = await startLlmServer(
  advisor({
    choose: (cls) =>
      cls === "idle"
        ? { action: "default", rationale: "nothing runs: the kernel default is fine", confidence: 0.9 }
        : write(LLM_BROKEN, "count enqueues and run a global FIFO with short slices"),
    repair: () =>
      write(LLM_FIXED, "the verifier refused the unchecked map value: wake-ups first, without the map"),
  }),
);
writeFileSync(portFile!, new URL(server.url).port);
process.on("SIGTERM", () => {
  console.log(`LLMREQUESTS ${server.requests.length}`);
  void server.close().then(() => process.exit(0));
});
