import { readSchedExtStatus, SCHED_EXT_DIR } from "../../src/kernel/sysfs.ts";
import type {
  Attachment,
  Kernel,
  KernelEvent,
  Loadable,
  SchedExtStatus,
  VerifyLoadResult,
} from "../../src/kernel/types.ts";
import { write } from "./proc-tree.ts";

// A Kernel for the daemon's wiring tests on a machine without sched_ext: its state is the
// fixture tree's /sys/kernel/sched_ext (written as the kernel would on attach, detach and
// ejection), read back through the same sysfs reader the daemon uses. The real kernel runs
// in the VM tests.

export class FixtureKernel implements Kernel {
  readonly #root: string;
  readonly #host: Parameters<typeof readSchedExtStatus>[0];
  #events: KernelEvent[] = [];
  #seq = 0;
  #pinned: string[] = [];
  /** When set, the fixture verifier refuses every object with this log. */
  refuseAll: string | undefined;
  readonly attached: string[] = [];

  constructor(root: string, host: Parameters<typeof readSchedExtStatus>[0]) {
    this.#root = root;
    this.#host = host;
    this.#write("disabled", undefined);
  }

  status(): SchedExtStatus {
    return readSchedExtStatus(this.#host);
  }

  async verifyLoad(objectPath: string): Promise<VerifyLoadResult> {
    return this.refuseAll
      ? { ok: false, log: `${objectPath}: ${this.refuseAll}` }
      : { ok: true, log: "fixture kernel: accepted" };
  }

  async attach(loadable: Loadable): Promise<Attachment> {
    this.#write("enabled", loadable.opsName);
    this.#pinned = [`/sys/fs/bpf/schedctl/${loadable.hash}/link`];
    this.attached.push(loadable.opsName);
    this.#events.push({ at: Date.now(), kind: "enabled", ops: loadable.opsName, reason: "enabled", raw: "" });
    return { hash: loadable.hash, opsName: loadable.opsName, handle: this.#pinned[0]!, attachedAt: 0 };
  }

  async detach(): Promise<void> {
    const ops = this.status().ops;
    this.#write("disabled", undefined);
    this.#pinned = [];
    if (ops)
      this.#events.push({
        at: Date.now(),
        kind: "disabled",
        ops,
        reason: "unregistered from user space",
        raw: "",
      });
  }

  /** The kernel ejects the running scheduler, as its watchdog would. */
  eject(reason: string): void {
    const ops = this.status().ops;
    this.#write("disabled", undefined);
    this.#pinned = [];
    this.#events.push({ at: Date.now(), kind: "disabled", ops, reason, raw: "" });
  }

  /** Probation markers are bpffs directories of the real kernel's; nothing to drop here. */
  confirm(): void {}

  pinnedLinks(): string[] {
    return [...this.#pinned];
  }

  readEvents(): KernelEvent[] {
    return this.#events.splice(0);
  }

  #write(state: "enabled" | "disabled", ops: string | undefined): void {
    if (state === "enabled") this.#seq++;
    write(this.#root, `${SCHED_EXT_DIR}/state`, `${state}\n`);
    write(this.#root, `${SCHED_EXT_DIR}/enable_seq`, `${this.#seq}\n`);
    write(this.#root, `${SCHED_EXT_DIR}/root/ops`, ops ? `${ops}\n` : "");
  }
}
