// Delivery of an accepted message to its targets, answered in real time.
import { type Reply, reply } from "../smtp/reply.ts";
import type { InboundMessage, Session } from "../smtp/session.ts";

export type Deliver = (session: Session, message: InboundMessage) => Promise<Reply>;

/**
 * Until the relay engine exists, every message is refused temporarily, so
 * senders keep it queued and nothing is accepted and lost.
 */
export const deliverNotYetAvailable: Deliver = async () => reply(451, "4.3.0", "Forwarding is not available yet, please try again later");
