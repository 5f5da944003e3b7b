import type { PolicySource } from "../policies/catalogue.ts";
import { CompileError, type PolicyCompiler } from "../policies/compile.ts";
import type { Tunables } from "../policies/types.ts";
import type { VerifyRequest } from "./types.ts";

// A verify request for one variant of a policy source: the hash comes without compiling (so a
// cached verdict costs no clang run); a compile failure becomes the static stage's refusal.
// Bad tunables throw here (TunableError), before anything is verified.
export function requestFor(
  compiler: PolicyCompiler,
  policy: PolicySource,
  tunables: Tunables = {},
): VerifyRequest {
  const { ref } = compiler.variant(policy, tunables);
  return {
    ref,
    build: async () => {
      try {
        const built = await compiler.compile(policy, tunables);
        return {
          kind: "object",
          ref: built.ref,
          source: built.source,
          objectPath: built.objectPath,
          workloads: policy.manifest.workloads,
          ...(built.compiledAgainst ? { compiledAgainst: built.compiledAgainst } : {}),
        };
      } catch (error) {
        if (error instanceof CompileError) return { kind: "uncompilable", ref, log: error.log };
        throw error;
      }
    },
  };
}
