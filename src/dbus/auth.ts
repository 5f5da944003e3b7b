import type { Host } from "../host/host.ts";

/** The group whose members may change what the daemon does (root always may). */
export const CONTROL_GROUP = "schedctl";

export type Decision = { allowed: true } | { allowed: false; reason: string };

/**
 * Root, or a member of the control group in the host's group database (/etc/group, primary group
 * from /etc/passwd). The uid comes from the bus (the kernel's peer credentials), never from the
 * caller's words; the files are re-read on each check so a new member needs no daemon restart.
 */
export function authorizeChange(host: Host, uid: number): Decision {
  if (uid === 0) return { allowed: true };
  const user = findUser(host, uid);
  const group = findGroup(host, CONTROL_GROUP);
  if (!group)
    return { allowed: false, reason: `uid ${uid} is not root and there is no "${CONTROL_GROUP}" group` };
  if (user && (user.gid === group.gid || group.members.includes(user.name))) return { allowed: true };
  const who = user ? `user ${user.name} (uid ${uid})` : `uid ${uid}`;
  return { allowed: false, reason: `${who} is neither root nor in group "${CONTROL_GROUP}"` };
}

interface UserEntry {
  name: string;
  gid: number;
}

function findUser(host: Host, uid: number): UserEntry | undefined {
  for (const fields of records(host, "/etc/passwd")) {
    // name:password:uid:gid:gecos:home:shell
    if (Number(fields[2]) === uid && fields[0]) return { name: fields[0], gid: Number(fields[3]) };
  }
  return undefined;
}

function findGroup(host: Host, name: string): { gid: number; members: string[] } | undefined {
  for (const fields of records(host, "/etc/group")) {
    // name:password:gid:member,member
    if (fields[0] === name) {
      return { gid: Number(fields[2]), members: (fields[3] ?? "").split(",").filter(Boolean) };
    }
  }
  return undefined;
}

function records(host: Host, path: string): string[][] {
  const text = host.tryReadText(path) ?? "";
  return text
    .split("\n")
    .filter((line) => line && !line.startsWith("#"))
    .map((line) => line.split(":"));
}
