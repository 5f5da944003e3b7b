import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { requireTool, which } from "../../../src/sandbox/exec.ts";
import { compareVersions, ensureSandboxKernel, extractVmlinux } from "../../../src/sandbox/kernel-image.ts";
import { tempDir, writeTree } from "../../helpers/tmp.ts";

describe("compareVersions", () => {
  it("orders kernel releases by their numeric fields, not as text", () => {
    const releases = ["7.2.12+deb13-cloud-amd64", "6.19.14+deb13-cloud-amd64", "7.3.4+deb13-cloud-amd64"];
    expect(releases.sort(compareVersions)).toEqual([
      "6.19.14+deb13-cloud-amd64",
      "7.2.12+deb13-cloud-amd64",
      "7.3.4+deb13-cloud-amd64",
    ]);
    expect(compareVersions("7.2.9+deb13", "7.2.12+deb13")).toBeLessThan(0);
  });
});

describe("ensureSandboxKernel", () => {
  it("returns the newest complete kernel in the cache without asking the mirror", async () => {
    const cache = tempDir();
    const files = (v: string) =>
      Object.fromEntries(["vmlinuz", "vmlinux", "vmlinux.h", "config"].map((f) => [`kernel/${v}/${f}`, "x"]));
    writeTree(cache, {
      ...files("7.2.12+deb13-cloud-amd64"),
      ...files("7.3.4+deb13-cloud-amd64"),
      // incomplete (no vmlinux.h, config): an interrupted fetch must not be used
      "kernel/7.4.1+deb13-cloud-amd64/vmlinuz": "x",
    });
    const kernel = await ensureSandboxKernel({ cacheDir: cache, mirror: "http://127.0.0.1:9/unreachable" });
    expect(kernel.version).toBe("7.3.4+deb13-cloud-amd64");
    expect(kernel.vmlinuxH).toBe(join(cache, "kernel", "7.3.4+deb13-cloud-amd64", "vmlinux.h"));
  });

  it("says the mirror cannot be reached and how to fetch the kernel when nothing is cached", async () => {
    const cache = tempDir();
    await expect(
      ensureSandboxKernel({ cacheDir: cache, mirror: "http://127.0.0.1:9/unreachable" }),
    ).rejects.toThrow(
      /cannot list Debian's trixie-backports kernels[\s\S]*node src\/sandbox\/kernel-image\.ts/,
    );
  });
});

describe("extractVmlinux", () => {
  it("refuses an image without a zstd payload", async () => {
    const dir = tempDir();
    writeFileSync(join(dir, "vmlinuz"), Buffer.alloc(4096, 1));
    await expect(
      extractVmlinux(join(dir, "vmlinuz"), join(dir, "vmlinux"), which("zstd") ?? "zstd"),
    ).rejects.toThrow(/no zstd payload/);
  });
});

describe("requireTool", () => {
  it("names the missing tool, what it is for and the command that installs it", () => {
    expect(() =>
      requireTool("qemu-system-nonexistent", "qemu-system-x86", "to boot the sched_ext kernel"),
    ).toThrow(
      "qemu-system-nonexistent is missing (needed to boot the sched_ext kernel); install it with `apt-get install qemu-system-x86` or run scripts/setup.sh",
    );
  });
});
