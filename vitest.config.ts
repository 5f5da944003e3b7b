import { defineConfig } from "vitest/config";

// Two projects: "unit" (pure logic, fixture trees, real SQLite, dbus-daemon, clang, bpftool on
// the host) and "vm" (everything that needs the sched_ext kernel under qemu; slow, serial).
export default defineConfig({
  test: {
    projects: [
      {
        test: {
          name: "unit",
          include: ["test/unit/**/*.test.ts", "test/integration/**/*.test.ts"],
          testTimeout: 30_000,
          hookTimeout: 60_000,
        },
      },
      {
        test: {
          name: "vm",
          include: ["test/vm/**/*.test.ts"],
          testTimeout: 600_000,
          hookTimeout: 900_000,
          fileParallelism: false,
          maxWorkers: 1,
        },
      },
    ],
  },
});
