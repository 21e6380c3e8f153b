/**
 * What Slack's Web API accepts and answers for the two methods this project
 * calls, written here from the facts of Slack's published OpenAPI 2.0
 * description (slackapi/slack-api-specs, "October 2020 spec updates") and of
 * today's method pages (https://docs.slack.dev/reference/methods/chat.postMessage,
 * …/auth.test, https://docs.slack.dev/apis/web-api/rate-limits).
 *
 * Facts kept from the description: the arguments of each method with their
 * types and which are required; every answer is an object with `ok`; a success
 * carries exactly the listed keys (`additionalProperties: false`), an error
 * `{ok: false, error}` with `error` from the method's list; the id and
 * timestamp patterns. The token is a header (`Authorization: Bearer`) or, in a
 * form body, a `token` argument.
 */

/** A JSON Schema (draft-07, as ajv compiles it). */
export type JsonSchema = Record<string, unknown>;

export interface SlackArgument {
  /** Form values are strings; a `boolean` also accepts `true`/`false`/`1`/`0` in a form. */
  type: 'string' | 'boolean';
  required?: boolean;
}

export interface SlackMethod {
  /** The HTTP method the description files it under (the SDK POSTs every call). */
  http: 'GET' | 'POST';
  /** Every argument the method takes, `token` aside. */
  args: Record<string, SlackArgument>;
  /** The body of an answer with `ok: true`. */
  success: JsonSchema;
  /** The body of an answer with `ok: false`. */
  error: JsonSchema;
}

const pattern = (regex: string): JsonSchema => ({ type: 'string', pattern: regex });

/** `C…` channel, `G…` private channel, `D…` direct message. */
const channelId = pattern('^[CGD][A-Z0-9]{8,}$');
/** A message timestamp: ten digits, a dot, six digits. */
const ts = pattern('^\\d{10}\\.\\d{6}$');
const botId = pattern('^B[A-Z0-9]{8,}$');
const teamId = pattern('^[T][A-Z0-9]{2,}$');
const userId = pattern('^[UW][A-Z0-9]{2,}$');
const workspaceId = pattern('^[TE][A-Z0-9]{8,}$');
const appId = pattern('^A[A-Z0-9]{1,}$');
const uri = { type: 'string', format: 'uri' };

/**
 * The message object a post answers with: the fields a message that was just
 * posted can carry (a bot's or a user's, in a channel or a thread). Read
 * receipts, files, comments and channel-join fields of the description's
 * larger object do not occur in such an answer and are left out.
 */
const message: JsonSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['text', 'type', 'ts'],
  properties: {
    type: { type: 'string' },
    subtype: { type: 'string' },
    text: { type: 'string' },
    ts,
    thread_ts: ts,
    user: userId,
    parent_user_id: userId,
    team: workspaceId,
    // The description's intent: a bot id, or null when the message is not displayed as a bot's.
    bot_id: { anyOf: [botId, { type: 'null' }] },
    bot_profile: {
      type: 'object',
      additionalProperties: false,
      required: ['id', 'deleted', 'name', 'updated', 'app_id', 'icons', 'team_id'],
      properties: {
        id: botId,
        app_id: appId,
        deleted: { type: 'boolean' },
        name: { type: 'string' },
        updated: { type: 'integer' },
        team_id: teamId,
        icons: {
          type: 'object',
          additionalProperties: false,
          required: ['image_36', 'image_48', 'image_72'],
          properties: { image_36: uri, image_48: uri, image_72: uri },
        },
      },
    },
    username: { type: 'string' },
    icons: {
      type: 'object',
      additionalProperties: false,
      properties: { emoji: { type: 'string' }, image_64: uri },
    },
    blocks: {
      type: 'array',
      items: { type: 'object', required: ['type'], properties: { type: { type: 'string' } } },
    },
    attachments: {
      type: 'array',
      minItems: 1,
      items: {
        type: 'object',
        additionalProperties: false,
        required: ['id'],
        properties: {
          id: { type: 'integer' },
          fallback: { type: 'string' },
          image_url: { type: 'string' },
          image_width: { type: 'integer' },
          image_height: { type: 'integer' },
          image_bytes: { type: 'integer' },
        },
      },
    },
  },
};

/**
 * `{ok: false, error}`: `errors` are the 2020 description's list for the
 * method followed by those today's method pages add (`ratelimited` being the
 * body of every 429); any other error is a departure from Slack.
 */
function errorAnswer(errors: string[]): JsonSchema {
  return {
    type: 'object',
    additionalProperties: false,
    required: ['ok', 'error'],
    properties: {
      ok: { const: false },
      error: { type: 'string', enum: errors },
      // Only on Slack's own development hosts, but part of the described answer.
      callstack: { type: 'string' },
    },
  };
}

/** Errors every method may answer about the request itself. */
const REQUEST_ERRORS = [
  'invalid_arg_name', 'invalid_array_arg', 'invalid_charset', 'invalid_form_data', 'invalid_post_type', 'missing_post_type',
];

export const SLACK_METHODS: Record<string, SlackMethod> = {
  'chat.postMessage': {
    http: 'POST',
    args: {
      channel: { type: 'string', required: true },
      text: { type: 'string' },
      // JSON arrays sent as URL-encoded strings, as the description has them.
      blocks: { type: 'string' },
      attachments: { type: 'string' },
      as_user: { type: 'string' },
      icon_emoji: { type: 'string' },
      icon_url: { type: 'string' },
      username: { type: 'string' },
      link_names: { type: 'boolean' },
      mrkdwn: { type: 'boolean' },
      parse: { type: 'string' },
      reply_broadcast: { type: 'boolean' },
      thread_ts: { type: 'string' },
      unfurl_links: { type: 'boolean' },
      unfurl_media: { type: 'boolean' },
    },
    success: {
      type: 'object',
      additionalProperties: false,
      required: ['ok', 'channel', 'ts', 'message'],
      properties: { ok: { const: true }, channel: channelId, ts, message },
    },
    error: errorAnswer([
      'channel_not_found', 'not_in_channel', 'is_archived', 'msg_too_long', 'no_text', 'too_many_attachments',
      'rate_limited', 'not_authed', 'invalid_auth', 'account_inactive', ...REQUEST_ERRORS,
      // today's documentation
      'ratelimited', 'restricted_action', 'token_revoked', 'missing_scope', 'invalid_arguments',
      'internal_error', 'fatal_error', 'service_unavailable', 'request_timeout',
    ]),
  },
  'auth.test': {
    http: 'GET',
    args: {},
    success: {
      type: 'object',
      additionalProperties: false,
      required: ['ok', 'url', 'team', 'user', 'team_id', 'user_id'],
      properties: {
        ok: { const: true },
        url: { type: 'string' },
        team: { type: 'string' },
        user: { type: 'string' },
        team_id: teamId,
        user_id: userId,
        bot_id: botId,
        is_enterprise_install: { type: 'boolean' },
      },
    },
    error: errorAnswer([
      'not_authed', 'invalid_auth', 'token_revoked', 'account_inactive', ...REQUEST_ERRORS,
      'invalid_json', 'json_not_object', 'request_timeout', 'upgrade_required',
      // today's documentation
      'ratelimited', 'missing_scope', 'internal_error', 'fatal_error', 'service_unavailable',
    ]),
  },
};
