import dbus from "dbus-next";
import { describe, expect, it } from "vitest";
import { authorizeChange } from "../../../src/dbus/auth.ts";
import { socketAddress } from "../../../src/dbus/bus.ts";
import { parseArguments } from "../../../src/dbus/inputs.ts";
import { createHost } from "../../../src/host/host.ts";
import { tempDir, writeTree } from "../../helpers/tmp.ts";

function invalid(run: () => unknown): string {
  try {
    run();
  } catch (error) {
    expect(error).toBeInstanceOf(dbus.DBusError);
    expect((error as dbus.DBusError).type).toBe("org.freedesktop.DBus.Error.InvalidArgs");
    return (error as dbus.DBusError).text;
  }
  throw new Error("expected InvalidArgs");
}

describe("argument validation", () => {
  it("turns tunables JSON into values, and an empty string into defaults", () => {
    expect(
      parseArguments("SwitchPolicy", { name: "latency", tunables: '{"slice_us": 3000, "cgroups": ["/a"]}' }),
    ).toEqual({
      name: "latency",
      tunables: { slice_us: 3000, cgroups: ["/a"] },
    });
    expect(parseArguments("SwitchPolicy", { name: "fifo", tunables: "  " }).tunables).toEqual({});
  });

  it("names the argument and the problem", () => {
    expect(invalid(() => parseArguments("SwitchPolicy", { name: "fifo", tunables: '{"x": {"y": 1}}' }))).toBe(
      'SwitchPolicy: tunables: a JSON object of name: number | boolean | string | [string], e.g. {"slice_us": 5000}',
    );
    expect(invalid(() => parseArguments("VerifyPolicy", { target: "" }))).toBe(
      "VerifyPolicy: target: a policy name or an absolute path to a policy source",
    );
    expect(invalid(() => parseArguments("CreatePolicy", { name: "ok", source: "" }))).toBe(
      "CreatePolicy: source: the source is empty",
    );
    expect(invalid(() => parseArguments("GetHistory", { limit: 20_000 }))).toMatch(
      /^GetHistory: limit: Too big/,
    );
  });

  it("takes absolute paths and catalogue names for VerifyPolicy", () => {
    expect(parseArguments("VerifyPolicy", { target: "/srv/p/mine.bpf.c" }).target).toBe("/srv/p/mine.bpf.c");
    expect(parseArguments("VerifyPolicy", { target: "batch-order" }).target).toBe("batch-order");
  });
});

describe("authorization", () => {
  const host = () => {
    const root = tempDir();
    writeTree(root, {
      "etc/passwd":
        "root:x:0:0::/root:/bin/sh\nalice:x:1000:1000::/home/alice:/bin/sh\nbob:x:1001:990::/home/bob:/bin/sh\n",
      "etc/group": "# comment\nalice:x:1000:\nschedctl:x:990:carol,alice\n",
    });
    return createHost(root);
  };

  it("allows root, listed members and users whose primary group it is", () => {
    const h = host();
    expect(authorizeChange(h, 0)).toEqual({ allowed: true });
    expect(authorizeChange(h, 1000)).toEqual({ allowed: true });
    expect(authorizeChange(h, 1001)).toEqual({ allowed: true });
  });

  it("refuses everyone else, saying who", () => {
    expect(authorizeChange(host(), 4242)).toEqual({
      allowed: false,
      reason: 'uid 4242 is neither root nor in group "schedctl"',
    });
    const bare = createHost(tempDir());
    expect(authorizeChange(bare, 1000)).toEqual({
      allowed: false,
      reason: 'uid 1000 is not root and there is no "schedctl" group',
    });
  });
});

describe("bus addresses", () => {
  it("opens unix sockets through Node's net module, abstract ones with a leading NUL", () => {
    expect(socketAddress("unix:path=/run/dbus/system_bus_socket")).toBe(
      "unix:socket=/run/dbus/system_bus_socket",
    );
    expect(socketAddress("unix:abstract=/tmp/dbus-x,guid=12")).toBe("unix:socket=\0/tmp/dbus-x");
    expect(socketAddress("unix:path=/tmp/a%20b,guid=1;tcp:host=h,port=1")).toBe(
      "unix:socket=/tmp/a b;tcp:host=h,port=1",
    );
  });
});
