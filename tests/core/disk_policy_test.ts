import assert from "node:assert/strict";
import { FolderBudget, storedMode } from "../../lib/core/file/disk_policy.ts";
import { UserError } from "../../lib/core/errors.ts";

Deno.test("disk policy: offered modes lose group and other write, setuid, setgid and sticky", () => {
  assert.equal(storedMode(0o4777, false), 0o755);
  assert.equal(storedMode(0o7777, false), 0o755);
  assert.equal(storedMode(0o666, false), 0o644);
  assert.equal(storedMode(0o600, false), 0o600);
  assert.equal(storedMode(0o777, true), 0o755, "a world-writable folder is stored 0755");
  assert.equal(storedMode(0o1777, true), 0o755, "no sticky folder");
  assert.equal(storedMode(0o000, true), 0o700, "the server can still store in a folder");
});

Deno.test("disk policy: a connection makes at most its cap of folders; one given back is taken again", () => {
  const budget = new FolderBudget(3);
  budget.take();
  budget.take();
  budget.giveBack();
  budget.take();
  budget.take();
  assert.equal(budget.made, 3);
  assert.throws(
    () => budget.take(),
    (e) => e instanceof UserError && /at most 3 folders/.test(e.message),
  );
});
