/**
 * Slack targets: a conversation id (`C…` public channel, `G…` private
 * channel, `D…` direct message), a channel `#name`, or a user id (`U…`/`W…`),
 * to whom the bot writes in its own direct-message conversation. The id
 * patterns are those of the Web API spec (`defs_channel`, `defs_user_id`).
 */
const CONVERSATION_ID = /^[CGD][A-Z0-9]{8,}$/;
const USER_ID = /^[UW][A-Z0-9]{2,}$/;
/** Slack channel names: at most 80 lower-case letters, digits, hyphens, underscores and periods. */
const CHANNEL_NAME = /^#[a-z0-9][a-z0-9._-]{0,79}$/;

export function validateSlackTarget(target: string): string | undefined {
  if (CONVERSATION_ID.test(target) || USER_ID.test(target)) return undefined;
  if (target.startsWith('#')) {
    if (CHANNEL_NAME.test(target.toLowerCase())) return undefined;
    return `${target} is not a Slack channel name: names are up to 80 lower-case letters, digits, hyphens, underscores and periods, after the #`;
  }
  if (target.startsWith('@')) {
    return `${target}: Slack users are addressed by their member id (U… or W…, under "Copy member ID" in their profile), not by @name`;
  }
  return `${JSON.stringify(target)} is not a Slack target: write a channel id (C…, G…, D…), a #channel-name or a user id (U…, W…)`;
}

/** Channel names are case-insensitive in Slack; ids are upper case already. */
export function normalizeSlackTarget(target: string): string {
  return target.startsWith('#') ? target.toLowerCase() : target;
}
