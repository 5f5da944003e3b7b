import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { openDb, StoreError } from "../../../src/store/db.ts";
import { tempDir } from "../../helpers/tmp.ts";

describe("openDb", () => {
  it("applies each family's migrations once, in version order, in WAL mode", () => {
    const path = join(tempDir(), "state", "state.db");
    const migrations = [
      { family: "b", version: 2, sql: "ALTER TABLE b ADD COLUMN y INTEGER" },
      { family: "b", version: 1, sql: "CREATE TABLE b (x INTEGER)" },
      { family: "a", version: 1, sql: "CREATE TABLE a (x INTEGER)" },
    ];
    const db = openDb(path, migrations);
    expect(db.pragma("journal_mode", { simple: true })).toBe("wal");
    db.prepare("INSERT INTO b (x, y) VALUES (1, 2)").run();
    db.close();
    const again = openDb(path, migrations);
    expect(again.prepare("SELECT count(*) AS n FROM schema_migrations").get()).toEqual({ n: 3 });
    expect(again.prepare("SELECT x, y FROM b").get()).toEqual({ x: 1, y: 2 });
    again.close();
  });

  it("names the failing migration and rolls it back", () => {
    const path = join(tempDir(), "state.db");
    const bad = [{ family: "z", version: 1, sql: "CREATE TABLE z (x); SELECT * FROM nowhere" }];
    expect(() => openDb(path, bad)).toThrow(StoreError);
    expect(() => openDb(path, bad)).toThrow(/migration z\/1 failed: no such table: nowhere/);
    const db = openDb(path, []);
    expect(db.prepare("SELECT name FROM sqlite_master WHERE name = 'z'").get()).toBeUndefined();
    db.close();
  });
});
