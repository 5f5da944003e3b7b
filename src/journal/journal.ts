import { existsSync } from "node:fs";
import type { Logger } from "../log/logger.ts";
import { DatagramSender } from "./datagram.ts";
import { type JournalEvent, journalFields } from "./events.ts";
import { encodeNative, type JournalFields } from "./native.ts";

export const JOURNAL_SOCKET = "/run/systemd/journal/socket";
export const SYSLOG_IDENTIFIER = "schedctld";

/** Where the daemon writes its audit trail. */
export interface Journal {
  record(event: JournalEvent): void;
  close(): void;
}

export interface JournalOptions {
  logger: Logger;
  /** journald's native socket; when it does not exist the records go to the logger. */
  socketPath?: string;
}

/**
 * Writes each event to journald's native socket with its structured fields, or, where no
 * journald runs, to the logger with the same fields (pino's JSON keeps them searchable).
 */
export function openJournal(options: JournalOptions): Journal {
  const socketPath = options.socketPath ?? JOURNAL_SOCKET;
  const { logger } = options;
  if (!existsSync(socketPath)) return loggerJournal(logger);
  const sender = new DatagramSender();
  const fallback = loggerJournal(logger);
  return {
    record(event) {
      const fields = { ...journalFields(event), SYSLOG_IDENTIFIER };
      sender.send(socketPath, encodeNative(fields)).catch((error: Error) => {
        logger.warn(
          { error: error.message, socket: socketPath },
          "journald refused a record; logging it instead",
        );
        fallback.record(event);
      });
    },
    close: () => sender.close(),
  };
}

function loggerJournal(logger: Logger): Journal {
  return {
    record(event) {
      const { MESSAGE, PRIORITY, ...rest } = journalFields(event);
      const fields: JournalFields = rest;
      const message = String(MESSAGE);
      if (Number(PRIORITY) <= 4) logger.warn(fields, message);
      else logger.info(fields, message);
    },
    close: () => undefined,
  };
}
