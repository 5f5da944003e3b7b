import { readFileSync, statSync } from "node:fs";

// A secret kept in a file of its own (an API key, a database password): readable by its owner
// only, and owned by root or by us. One check for every secret the configuration names.

export class SecretFileError extends Error {
  override readonly name = "SecretFileError";
}

/** The file's one word; `what` names it in errors, e.g. "[llm] api_key_file". */
export function readSecretFile(path: string, what: string): string {
  let stat: ReturnType<typeof statSync>;
  try {
    stat = statSync(path);
  } catch (error) {
    throw new SecretFileError(`${what} ${path}: cannot read it: ${(error as NodeJS.ErrnoException).code}`);
  }
  if ((stat.mode & 0o077) !== 0) {
    const mode = (stat.mode & 0o777).toString(8).padStart(3, "0");
    throw new SecretFileError(
      `${what} ${path}: refusing a secret readable by group or others (mode ${mode}); run chmod 600 ${path}`,
    );
  }
  const uid = process.getuid?.();
  if (uid !== undefined && stat.uid !== 0 && stat.uid !== uid) {
    throw new SecretFileError(`${what} ${path}: owned by uid ${stat.uid}, expected root or uid ${uid}`);
  }
  return oneWord(readFileSync(path, "utf8"), `${what} ${path}`);
}

export function oneWord(content: string, where: string): string {
  const secret = content.trim();
  if (secret.length === 0) throw new SecretFileError(`${where}: the file is empty`);
  if (/\s/.test(secret)) throw new SecretFileError(`${where}: the file holds more than one word`);
  return secret;
}
