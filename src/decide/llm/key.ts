import { readFileSync, statSync } from "node:fs";
import { join } from "node:path";

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
  const path = sources.keyFile;
  let stat: ReturnType<typeof statSync>;
  try {
    stat = statSync(path);
  } catch (error) {
    throw new ApiKeyError(
      `[llm] api_key_file ${path}: cannot read it: ${(error as NodeJS.ErrnoException).code}`,
    );
  }
  if ((stat.mode & 0o077) !== 0) {
    const mode = (stat.mode & 0o777).toString(8).padStart(3, "0");
    throw new ApiKeyError(
      `[llm] api_key_file ${path}: refusing a key readable by group or others (mode ${mode}); run chmod 600 ${path}`,
    );
  }
  const uid = process.getuid?.();
  if (uid !== undefined && stat.uid !== 0 && stat.uid !== uid) {
    throw new ApiKeyError(
      `[llm] api_key_file ${path}: owned by uid ${stat.uid}, expected root or uid ${uid}`,
    );
  }
  return nonEmpty(readFileSync(path, "utf8"), path);
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
  const key = content.trim();
  if (key.length === 0) throw new ApiKeyError(`${path}: the API key file is empty`);
  if (/\s/.test(key)) throw new ApiKeyError(`${path}: the API key file holds more than one word`);
  return key;
}
