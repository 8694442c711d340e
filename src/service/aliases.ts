// Aliases and addresses: saved, changed, imported and removed; what that
// means for their outside destinations (docs/aliases.md, "Destinations").
import type { Config } from "../config/index.ts";
import { type AliasInput, aliasLabel, placeName, type ValidationOptions } from "../aliases/rules.ts";
import { addAlias, aliasById, findAliasByName, importAliases, removeAliasById, updateAlias, type WriteOptions } from "../store/aliases.ts";
import { type Actor, audit } from "../store/audit.ts";
import type { DB } from "../store/db.ts";
import { setVacation, type VacationInput, vacationOf } from "../store/vacations.ts";
import { type AddressRequest, createAddress } from "./addresses.ts";
import type { DestinationService, Waiting } from "./destinations.ts";

export function aliasService({ db, config, destinations }: { db: DB; config: Config; destinations: DestinationService }) {
  const validation = (): ValidationOptions => ({ allowPrivateWebhooks: config.webhooks.allowPrivate, addressDefaults: config.addresses });
  // An alias saved by an actor whose word does not confirm destinations waits for its owners (docs/aliases.md).
  const writing = (actor: Actor): WriteOptions => ({ ...validation(), confirmTargets: !actor.confirmsDestinations });

  const aliases = {
    async add(actor: Actor, domain: string, input: AliasInput) {
      await destinations.checkConfirmable(actor, input.recipients);
      const rule = await addAlias(db, domain, input, writing(actor));
      await audit(db, actor, "alias.add", `${aliasLabel(rule)}@${placeName(rule)}`, null, rule);
      return { alias: rule, waiting: await destinations.register(actor, rule.recipients) };
    },
    async update(actor: Actor, id: number, input: Pick<AliasInput, "recipients" | "disabled" | "description">) {
      await destinations.checkConfirmable(actor, input.recipients);
      const before = await aliasById(db, id);
      const after = await updateAlias(db, id, input, writing(actor));
      await audit(db, actor, "alias.update", `${aliasLabel(after)}@${placeName(after)}`, before, after);
      return { alias: after, waiting: await destinations.register(actor, after.recipients) };
    },
    /** The alias's vacation reply (an auto-reply while its owner is away). */
    async setVacation(actor: Actor, place: string, name: string, input: VacationInput) {
      const alias = await findAliasByName(db, place, name);
      const before = (await vacationOf(db, alias.id)) ?? null;
      const after = await setVacation(db, place, name, input);
      await audit(db, actor, "alias.vacation", `${aliasLabel(alias)}@${placeName(alias)}`, before, after);
      return after;
    },
    async remove(actor: Actor, id: number) {
      const removed = await removeAliasById(db, id);
      await audit(db, actor, "alias.remove", `${aliasLabel(removed)}@${placeName(removed)}`, removed, null);
      return removed;
    },
    async import(actor: Actor, domain: string, text: string, options: { apply: boolean; replace?: boolean }) {
      const dryRun = await importAliases(db, domain, text, { ...validation(), apply: false });
      await destinations.checkConfirmable(actor, dryRun.aliases.flatMap((a) => a.recipients));
      const report = await importAliases(db, domain, text, { ...options, ...writing(actor) });
      let waiting: Waiting[] = [];
      if (report.applied) {
        await audit(db, actor, "alias.import", report.domain, null, { aliases: report.aliases.length, replace: !!options.replace });
        waiting = await destinations.register(actor, report.aliases.flatMap((a) => a.recipients));
      }
      return { report, waiting };
    },
  };
  const addresses = {
    async create(actor: Actor, request: AddressRequest) {
      await destinations.checkConfirmable(actor, request.targets);
      const created = await createAddress(db, config, request, !actor.confirmsDestinations);
      await audit(db, actor, "address.create", created.address, null, created.alias);
      return { ...created, waiting: await destinations.register(actor, created.alias.recipients) };
    },
  };
  return { aliases, addresses };
}
