import type { Host } from "./host.ts";

/**
 * Where cgroup v2 is mounted, read from /proc/self/mountinfo. On a unified host that is
 * /sys/fs/cgroup; on a hybrid host (v1 controllers plus v2) often /sys/fs/cgroup/unified; on a
 * v1-only host there is none and the result says so.
 */
export type Cgroup2Mount = { found: true; path: string } | { found: false; reason: string };

export function findCgroup2Mount(host: Host): Cgroup2Mount {
  const mountinfo = host.tryReadText("/proc/self/mountinfo");
  if (mountinfo === undefined) return { found: false, reason: "/proc/self/mountinfo is missing" };
  let v1 = false;
  for (const line of mountinfo.split("\n")) {
    // "36 25 0:31 / /sys/fs/cgroup rw,nosuid - cgroup2 cgroup2 rw": the type follows " - ".
    const sep = line.indexOf(" - ");
    if (sep < 0) continue;
    const fsType = line.slice(sep + 3).split(" ", 1)[0];
    const mountPoint = unescapeMountPath(line.slice(0, sep).split(" ")[4] ?? "");
    if (fsType === "cgroup2") return { found: true, path: mountPoint };
    if (fsType === "cgroup") v1 = true;
  }
  return {
    found: false,
    reason: v1
      ? "only cgroup v1 is mounted (no cgroup2 in /proc/self/mountinfo); per-cgroup signals are unavailable"
      : "no cgroup2 filesystem is mounted",
  };
}

/** mountinfo escapes space, tab, newline and backslash as octal (\040 ...). */
function unescapeMountPath(path: string): string {
  return path.replace(/\\([0-7]{3})/g, (_, octal: string) => String.fromCharCode(Number.parseInt(octal, 8)));
}
