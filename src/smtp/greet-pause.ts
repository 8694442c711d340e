// The pause before the SMTP banner. smtp-server waits a fixed 100 ms on every
// new connection (a client that talks before the banner gets "421 You talk too
// soon") and has no option to change it, so loading this module replaces
// SMTPConnection.prototype.init with a copy that reads the pause from the
// server's `greetPause` option. The copy is of smtp-server 3.21.6
// (dist/esm/smtp-connection.js, the build Bun runs); only the delay differs.
// test/greet-pause.test.ts fails when the original changes, so an upgrade
// makes someone compare the copy again.
import { SMTPConnection } from "smtp-server/lib/smtp-connection.js";

declare module "smtp-server/lib/types.js" {
  interface SMTPServerOptions {
    /** Milliseconds before the banner (0: at once); default smtp-server's 100. Needs this module loaded. */
    greetPause?: number;
  }
}

/** smtp-server's own pause, kept for servers that do not set one (the test sinks, say). */
export const DEFAULT_GREET_PAUSE_MS = 100;

/** The init being replaced, for the test that checks it still has the shape copied here. */
export const originalInit = SMTPConnection.prototype.init;

/** How long a connection of a server with these options waits before its banner. */
export function greetPauseOf(options: { greetPause?: number | undefined }): number {
  return options.greetPause ?? DEFAULT_GREET_PAUSE_MS;
}

SMTPConnection.prototype.init = function init(this: SMTPConnection) {
  this._setListeners(() => {
    if (this._server.options.maxClients && this._server.connections.size > this._server.options.maxClients) {
      return this.send(421, this.name + " Too many connected clients, try again in a moment", false);
    }
    const readyTimer = setTimeout(() => this.connectionReady(), greetPauseOf(this._server.options));
    // As upstream: the pause must not keep the process alive.
    readyTimer.unref();
  });
};
