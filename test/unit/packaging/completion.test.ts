import { execFileSync } from "node:child_process";
import { join } from "node:path";
import { describe, expect, it } from "vitest";

// The bash completion the package installs, driven by real bash. bash-completion's own helpers
// (_init_completion, _filedir) are given minimal stand-ins that do what the script relies on.

const COMPLETION = join(import.meta.dirname, "../../../etc/bash-completion/schedctl");

function complete(line: string): string[] {
  const script = `
_init_completion() { cur="\${COMP_WORDS[COMP_CWORD]}"; prev="\${COMP_WORDS[COMP_CWORD-1]}"; words=("\${COMP_WORDS[@]}"); cword=$COMP_CWORD; }
_filedir() { COMPREPLY=(FILES); }
source "$1"
read -ra COMP_WORDS <<< "$2"
[[ "$2" == *" " ]] && COMP_WORDS+=("")
COMP_CWORD=$((\${#COMP_WORDS[@]} - 1))
_schedctl
printf '%s\\n' "\${COMPREPLY[@]}"
`;
  const out = execFileSync("bash", ["-c", script, "bash", COMPLETION, line], { encoding: "utf8" });
  return out.split("\n").filter(Boolean).sort();
}

describe("bash completion for schedctl", () => {
  it("offers --help after every command", () => {
    for (const command of [
      "status",
      "history",
      "switch",
      "mode",
      "verify",
      "reload",
      "mcp",
      "record",
      "demo",
    ])
      expect({ command, offered: complete(`schedctl ${command} --he`) }).toEqual({
        command,
        offered: ["--help"],
      });
  });

  it("offers the commands first", () => {
    expect(complete("schedctl ")).toEqual(
      expect.arrayContaining(["status", "switch", "mode", "mcp", "--json"]),
    );
    expect(complete("schedctl st")).toEqual(["status"]);
  });

  it("offers the modes after mode, and files after verify and --out", () => {
    expect(complete("schedctl mode ")).toEqual(["auto", "manual", "observe"]);
    expect(complete("schedctl verify ")).toEqual(["FILES"]);
    expect(complete("schedctl record --out ")).toEqual(["FILES"]);
  });

  it("offers each read command's options", () => {
    expect(complete("schedctl history -")).toEqual(["--address", "--bus", "--help", "--json", "-n"]);
    expect(complete("schedctl status --bus ")).toEqual(["session", "system"]);
  });
});
