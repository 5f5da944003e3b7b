import { hostname } from "node:os";
import type { Host } from "../host/host.ts";
import type { FleetIdentity } from "./link.ts";

// Who this host is to the fleet, and which of the others' outcomes apply to it: the same
// kernel release and the same CPU model class (the model name, clock speed and stepping aside).

export function fleetIdentity(host: Host, hostId: string | undefined): FleetIdentity {
  return {
    hostId:
      hostId ??
      (hostname()
        .replace(/[^A-Za-z0-9._-]/g, "-")
        .slice(0, 64) ||
        "host"),
    kernel: read(host, "/proc/sys/kernel/osrelease").trim().slice(0, 100) || "unknown",
    cpuClass: cpuClass(read(host, "/proc/cpuinfo")),
  };
}

/** "Intel(R) Xeon(R) CPU E5-2680 v4 @ 2.40GHz" -> "intel xeon cpu e5-2680 v4". */
export function cpuClass(cpuinfo: string): string {
  const line = cpuinfo.split("\n").find((l) => /^model name\s*:/.test(l));
  if (!line) return "unknown";
  return (
    line
      .slice(line.indexOf(":") + 1)
      .replace(/\((R|TM|tm)\)/g, "")
      .replace(/@.*$/, "")
      .replace(/[^A-Za-z0-9 ._-]/g, " ")
      .replace(/\s+/g, " ")
      .trim()
      .toLowerCase()
      .slice(0, 100) || "unknown"
  );
}

function read(host: Host, path: string): string {
  try {
    return host.readText(path);
  } catch {
    return "";
  }
}
