import { readFileSync } from "node:fs";
import { join } from "node:path";
import { oneWord, readSecretFile } from "../../config/secret.ts";

// The API key: a systemd credential (LoadCredential=llm-api-key:...) wins over a configured key
// file. The package installs the credential's source empty (systemd 252 fails the unit when a
// LoadCredential file is missing), so an empty credential means "none given here". The file must be readable by its owner only, and owned by root or by us; the key itself
// never leaves this module except into the provider's request header.

export const CREDENTIAL_NAME = "llm-api-key";

export class ApiKeyError extends Error {
  override readonly name = "ApiKeyError";
}

export interface KeySources {
  /** $CREDENTIALS_DIRECTORY, as systemd sets it for the unit. */
  credentialsDirectory?: string | undefined;
  /** [llm] api_key_file. */
  keyFile?: string | undefined;
}

/** The key, or undefined when none is configured (local servers often need none). */
export function readApiKey(sources: KeySources): string | undefined {
  if (sources.credentialsDirectory) {
    const path = join(sources.credentialsDirectory, CREDENTIAL_NAME);
    const key = tryRead(path);
    if (key !== undefined && key.trim() !== "") return nonEmpty(key, path);
  }
  if (!sources.keyFile) return undefined;
  try {
    return readSecretFile(sources.keyFile, "[llm] api_key_file");
  } catch (error) {
    throw new ApiKeyError((error as Error).message);
  }
}

function tryRead(path: string): string | undefined {
  try {
    return readFileSync(path, "utf8");
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw new ApiKeyError(`${path}: cannot read the credential: ${(error as NodeJS.ErrnoException).code}`);
  }
}

function nonEmpty(content: string, path: string): string {
  try {
    return oneWord(content, path);
  } catch (error) {
    throw new ApiKeyError((error as Error).message);
  }
}
