// Every migration, in order. Imported statically so `bun build --compile`
// embeds them in the binary; never edit one that has shipped, add the next.
import type { Migration } from "kysely/migration";
import * as m001 from "./001_initial.ts";
import * as m002 from "./002_routing.ts";
import * as m003 from "./003_delivery.ts";
import * as m004 from "./004_auth.ts";
import * as m005 from "./005_abuse.ts";
import * as m006 from "./006_webhooks_vacation.ts";
import * as m007 from "./007_admin.ts";
import * as m008 from "./008_api.ts";
import * as m009 from "./009_sender_lists.ts";
import * as m010 from "./010_confirmations.ts";
import * as m011 from "./011_dkim_rotation.ts";
import * as m012 from "./012_greylist_senders.ts";
import * as m013 from "./013_server_dkim.ts";
import * as m014 from "./014_event_reason.ts";
import * as m015 from "./015_totp_last_step.ts";
import * as m016 from "./016_alerts.ts";
import * as m017 from "./017_catchall_names.ts";
import * as m019 from "./019_app_passwords.ts";
import * as m020 from "./020_outbound_queue.ts";
import * as m021 from "./021_nodes.ts";
import * as m022 from "./022_shared_secrets.ts";
import * as m023 from "./023_shared_settings.ts";

export const migrations: Record<string, Migration> = {
  "001_initial": m001,
  "002_routing": m002,
  "003_delivery": m003,
  "004_auth": m004,
  "005_abuse": m005,
  "006_webhooks_vacation": m006,
  "007_admin": m007,
  "008_api": m008,
  "009_sender_lists": m009,
  "010_confirmations": m010,
  "011_dkim_rotation": m011,
  "012_greylist_senders": m012,
  "013_server_dkim": m013,
  "014_event_reason": m014,
  "015_totp_last_step": m015,
  "016_alerts": m016,
  "017_catchall_names": m017,
  "019_app_passwords": m019,
  "020_outbound_queue": m020,
  "021_nodes": m021,
  "022_shared_secrets": m022,
  "023_shared_settings": m023,
};
