import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { runProgram } from "../../helpers/run.ts";

// The man pages the .deb installs (debian/schedctl.manpages): each exists, says the section its
// name says, a command in /usr/bin has its page in section 1 and one in /usr/sbin in section 8,
// and man-db renders each without a warning (what lintian's groff-message checks).

const ROOT = join(import.meta.dirname, "../../..");
const pages = readFileSync(join(ROOT, "debian/schedctl.manpages"), "utf8").split("\n").filter(Boolean);
const installed = readFileSync(join(ROOT, "debian/schedctl.install"), "utf8");

describe("man pages", () => {
  it("are the daemon's (8), the client's (1) and the configuration file's (5)", () => {
    expect(pages.sort()).toEqual(["man/schedctl.1", "man/schedctl.toml.5", "man/schedctld.8"]);
    expect(installed).toMatch(/^debian\/wrappers\/schedctl usr\/bin$/m);
    expect(installed).toMatch(/^debian\/wrappers\/schedctld usr\/sbin$/m);
  });

  for (const page of pages)
    it(`${page} says its own section and renders without a warning`, async () => {
      const section = page.split(".").at(-1);
      const header = readFileSync(join(ROOT, page), "utf8").split("\n")[0] ?? "";
      expect(header).toMatch(new RegExp(`^\\.TH \\S+ ${section} `));
      const { code, stderr } = await runProgram(
        "man",
        ["--warnings", "-E", "UTF-8", "-l", "-Tutf8", "-Z", join(ROOT, page)],
        {
          env: { ...process.env, LC_ALL: "C.UTF-8", MANWIDTH: "80" },
        },
      );
      expect({ code, stderr }).toEqual({ code: 0, stderr: "" });
    });
});
