import { describe, expect, it } from "vitest";
import { cpuClass, fleetIdentity } from "../../../src/fleet/identity.ts";
import { createHost } from "../../../src/host/host.ts";
import { tempDir, writeTree } from "../../helpers/tmp.ts";

// Which of the fleet's outcomes apply to a host: its kernel release and CPU model class.

describe("a host's identity in the fleet", () => {
  it("reduces the CPU model name to its class (no clock speed, trademarks or stray characters)", () => {
    const info =
      "processor\t: 0\nvendor_id\t: GenuineIntel\nmodel name\t: Intel(R) Xeon(R) CPU E5-2680 v4 @ 2.40GHz\n";
    expect(cpuClass(info)).toBe("intel xeon cpu e5-2680 v4");
    expect(cpuClass("model name\t: AMD EPYC 7763 64-Core Processor\n")).toBe(
      "amd epyc 7763 64-core processor",
    );
    expect(cpuClass("model name\t: \u001b[31mevil\u0007\n")).toBe("31mevil");
    expect(cpuClass("processor : 0\n")).toBe("unknown");
  });

  it("reads the kernel release and CPU from the host, and says unknown where they are missing", () => {
    const root = tempDir();
    writeTree(root, {
      "proc/sys/kernel/osrelease": "7.3.4+deb13-cloud-amd64\n",
      "proc/cpuinfo": "model name\t: QEMU Virtual CPU version 2.5+\n",
    });
    expect(fleetIdentity(createHost(root), "web-01")).toEqual({
      hostId: "web-01",
      kernel: "7.3.4+deb13-cloud-amd64",
      cpuClass: "qemu virtual cpu version 2.5",
    });
    const bare = fleetIdentity(createHost(tempDir()), undefined);
    expect(bare).toMatchObject({ kernel: "unknown", cpuClass: "unknown" });
    expect(bare.hostId).toMatch(/^[A-Za-z0-9._-]{1,64}$/);
  });
});
