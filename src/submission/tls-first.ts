// AUTH before STARTTLS on the submission port. smtp-server refuses it with
// "538 Error: Must issue a STARTTLS command first", without an enhanced status
// code; loading this module makes a server that sets `authBeforeTlsReply`
// answer with that text instead, e.g. RFC 4954 §6's "538 5.7.11 Encryption
// required for requested authentication mechanism". Like smtp-server's own
// refusal it comes before any credential is read (a LOGIN client is never
// asked for its password in the clear). Other servers keep smtp-server's AUTH.
import { SMTPConnection } from "smtp-server/lib/smtp-connection.js";

declare module "smtp-server/lib/types.js" {
  interface SMTPServerOptions {
    /** The reply text after 538 to AUTH before TLS. Needs this module loaded. */
    authBeforeTlsReply?: string;
  }
}

const handleAuth = SMTPConnection.prototype.handler_AUTH;

SMTPConnection.prototype.handler_AUTH = function handler_AUTH(this: SMTPConnection, command: Buffer, callback: () => void) {
  const text = this._server.options.authBeforeTlsReply;
  if (text === undefined || this.secure) return handleAuth.call(this, command, callback);
  this.send(538, text, false);
  callback();
};
