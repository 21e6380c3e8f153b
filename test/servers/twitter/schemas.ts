/**
 * What X's API v2 accepts and answers for the three operations this project
 * calls, written here from the facts of X's published OpenAPI 3.0 description
 * ("X API v2", version 2.167, as pinned by xdevplatform/xdk) and of its
 * rate-limit page (https://docs.x.com/x-api/fundamentals/rate-limits).
 *
 * Facts kept from the description: the operations' ids, path and query
 * parameters with their patterns and value lists, the request bodies (both
 * closed: `additionalProperties: false`), the 2xx bodies, and the `default`
 * answer: an `Error` as `application/json` or a `Problem` (one of nine typed
 * RFC 7807 problems) as `application/problem+json`. The description lists no
 * 429 and no rate-limit headers: those come from the rate-limit page.
 */

/** A JSON Schema (draft-07, as ajv compiles it). */
export type JsonSchema = Record<string, unknown>;

export interface XParameter {
  name: string;
  in: 'path' | 'query';
  required?: boolean;
  /** An `array` schema is sent form-style, not exploded: `user.fields=id,name`. */
  schema: JsonSchema;
}

export interface XOperation {
  operationId: string;
  parameters: XParameter[];
  /** Content type → schema of the request body. */
  requestBody?: Record<string, JsonSchema>;
  /** Status (or `default`) → content type → schema of the answer. */
  responses: Record<string, Record<string, JsonSchema>>;
}

/** X's numeric ids: 1 to 19 digits. */
const numericId = { type: 'string', pattern: '^[0-9]{1,19}$' };
const string = { type: 'string' };
const boolean = { type: 'boolean' };
const integer = { type: 'integer' };
const replySettings = { type: 'string', enum: ['following', 'mentionedUsers', 'subscribers', 'verified'] };

const closed = (properties: Record<string, JsonSchema>, required: string[] = []): JsonSchema => ({
  type: 'object', additionalProperties: false, properties, ...(required.length ? { required } : {}),
});

/** `POST /2/tweets` body: text, or media, a poll, a reply, a quote… */
const createPostsRequest = closed({
  text: string,
  card_uri: string,
  community_id: numericId,
  direct_message_deep_link: string,
  for_super_followers_only: boolean,
  made_with_ai: boolean,
  nullcast: boolean,
  paid_partnership: boolean,
  share_with_followers: boolean,
  quote_tweet_id: numericId,
  reply_settings: replySettings,
  edit_options: closed({ previous_post_id: numericId }, ['previous_post_id']),
  geo: closed({ place_id: string }, ['place_id']),
  media: closed({
    media_ids: { type: 'array', minItems: 1, maxItems: 4, items: numericId },
    tagged_user_ids: { type: 'array', maxItems: 10, items: numericId },
    preview_media_id: numericId,
    embeddable: boolean,
    title: string,
    // Install, visit and watch buttons: objects the hub never sends.
    call_to_actions: closed({ app_install: { type: 'object' }, visit_site: { type: 'object' }, watch_now: { type: 'object' } }),
  }, ['media_ids']),
  poll: closed({
    options: { type: 'array', minItems: 2, maxItems: 4, items: { type: 'string', minLength: 1, maxLength: 25 } },
    duration_minutes: { type: 'integer', minimum: 5, maximum: 10080 },
    reply_settings: replySettings,
  }, ['options', 'duration_minutes']),
  reply: closed({
    in_reply_to_tweet_id: numericId,
    auto_populate_reply_metadata: boolean,
    exclude_reply_user_ids: { type: 'array', items: string },
  }, ['in_reply_to_tweet_id']),
});

/** `POST /2/dm_conversations/with/{participant_id}/messages` body: text and/or media attachments. */
const createDirectMessageRequest: JsonSchema = {
  ...closed({
    text: { type: 'string', minLength: 1 },
    attachments: { type: 'array', items: closed({ media_id: numericId }, ['media_id']) },
  }),
  anyOf: [{ required: ['text'] }, { required: ['attachments'] }],
};

/** One RFC 7807 problem of X's: `type` is `https://api.x.com/2/problems/<kind>`, with `title` and `detail`. */
function problemOf(kind: string, extra: Record<string, JsonSchema>, required: string[] = []): JsonSchema {
  return {
    type: 'object',
    required: ['type', 'title', 'detail', ...required],
    properties: {
      type: { type: 'string', enum: [`https://api.x.com/2/problems/${kind}`] },
      title: string,
      detail: string,
      status: integer,
      ...extra,
    },
  };
}

const problem: JsonSchema = {
  oneOf: [
    problemOf('resource-not-found', { parameter: string, value: string, resource_id: string, resource_type: string }, ['resource_type']),
    problemOf('invalid-request', { parameter: string, value: string }),
    problemOf('not-authorized-for-resource', {
      parameter: string, value: string, resource_id: string, resource_type: string, section: string,
    }, ['resource_type']),
    problemOf('not-authorized-for-field', {
      field: string, parameter: string, value: string, resource_id: string, resource_type: string, section: string,
    }, ['field']),
    problemOf('field-unauthorized', { field: string, resource_type: string, section: string }, ['field']),
    problemOf('field-hydration-failure', { field: string, resource_type: string, section: string }, ['field']),
    problemOf('resource-unavailable', { resource_id: string, resource_type: string }, ['resource_type']),
    problemOf('disallowed-resource', { resource_id: string, resource_type: string, section: string }),
    problemOf('internal-error', {}),
  ],
};

/**
 * X answers generic HTTP failures (401, 403 duplicate content, 429, …) with a
 * problem of type `about:blank`, which the description's `Problem` union does
 * not list: those are checked against this shape instead.
 */
export const GENERIC_PROBLEM: JsonSchema = {
  type: 'object',
  required: ['type', 'title', 'status', 'detail'],
  properties: { type: { const: 'about:blank' }, title: string, status: integer, detail: string },
};

/** The `default` answer of every operation. */
const failure = {
  'application/json': { type: 'object', required: ['code', 'message'], properties: { code: { type: 'integer', format: 'int32' }, message: string } },
  'application/problem+json': problem,
};

/** A 2xx body: `data`, and `errors` for the parts that failed. */
const answer = (data: JsonSchema, more: Record<string, JsonSchema> = {}): JsonSchema => ({
  type: 'object',
  properties: { data, errors: { type: 'array', items: problem }, ...more },
});

/** The user object: the fields a lookup returns (id, name, username by default; others on request). */
const user: JsonSchema = {
  type: 'object',
  properties: {
    id: string,
    name: string,
    username: string,
    created_at: { type: 'string', format: 'date-time' },
    description: string,
    location: string,
    url: string,
    profile_image_url: string,
    profile_banner_url: string,
    protected: boolean,
    verified: boolean,
    verified_type: string,
    verified_followers_count: integer,
    parody: boolean,
    is_identity_verified: boolean,
    receives_your_dm: boolean,
    subscribes_to_you: boolean,
    subscription_type: string,
    most_recent_post_id: string,
    pinned_post_id: string,
    confirmed_email: string,
    connection_status: {
      type: 'array',
      items: { type: 'string', enum: ['blocking', 'follow_request_received', 'follow_request_sent', 'followed_by', 'following', 'muting'] },
    },
    public_metrics: {
      type: 'object',
      required: ['followers_count', 'following_count', 'post_count', 'listed_count'],
      properties: {
        followers_count: integer, following_count: integer, post_count: integer, listed_count: integer,
        like_count: { type: ['integer', 'null'] }, media_count: { type: ['integer', 'null'] },
      },
    },
  },
};

/** A form-style list of values from a fixed set (`user.fields`, `expansions`, `post.fields`). */
const listOf = (values: string[]): JsonSchema => ({
  type: 'array', minItems: 1, uniqueItems: true, items: { type: 'string', enum: values },
});

export const X_OPERATIONS: Record<string, XOperation> = {
  'POST /2/tweets': {
    operationId: 'createPosts',
    parameters: [],
    requestBody: { 'application/json': createPostsRequest },
    responses: {
      201: { 'application/json': answer({ type: 'object', required: ['id', 'text'], properties: { id: numericId, text: string, edit_history_post_ids: { type: 'array', items: string } } }) },
      default: failure,
    },
  },
  'POST /2/dm_conversations/with/{participant_id}/messages': {
    operationId: 'createDirectMessagesByParticipantId',
    parameters: [{ name: 'participant_id', in: 'path', required: true, schema: numericId }],
    requestBody: { 'application/json': createDirectMessageRequest },
    responses: {
      201: { 'application/json': answer({ type: 'object', required: ['dm_conversation_id', 'dm_event_id'], properties: { dm_conversation_id: string, dm_event_id: string } }) },
      default: failure,
    },
  },
  'GET /2/users/by/username/{username}': {
    operationId: 'getUsersByUsername',
    parameters: [
      { name: 'username', in: 'path', required: true, schema: { type: 'string', pattern: '^[A-Za-z0-9_]{1,15}$' } },
      {
        name: 'user.fields', in: 'query', schema: listOf([
          'confirmed_email', 'connection_status', 'created_at', 'description', 'entities', 'id', 'is_identity_verified',
          'location', 'name', 'parody', 'profile_banner_url', 'profile_image_url', 'protected', 'public_metrics',
          'receives_your_dm', 'subscribes_to_you', 'subscription', 'subscription_type', 'url', 'username', 'verified',
          'verified_followers_count', 'verified_type', 'withheld',
        ]),
      },
      { name: 'expansions', in: 'query', schema: listOf(['affiliation', 'most_recent_post_id', 'pinned_post_id']) },
      {
        name: 'post.fields', in: 'query', schema: listOf([
          'article', 'article_title', 'attachments', 'card_uri', 'community_id', 'context_annotations', 'conversation_id',
          'created_at', 'display_text_range', 'edit_controls', 'entities', 'geo', 'id', 'lang', 'matched_media_notes',
          'media_metadata', 'non_public_metrics', 'note_post', 'note_request_suggestions', 'organic_metrics',
          'paid_partnership', 'possibly_sensitive', 'promoted_metrics', 'public_metrics', 'reply_settings', 'scopes',
          'source', 'suggested_source_links', 'suggested_source_links_with_counts', 'text', 'withheld',
        ]),
      },
    ],
    responses: {
      200: {
        'application/json': answer(user, {
          // Expanded objects: the pinned or latest post and the users they name.
          includes: { type: 'object', properties: { users: { type: 'array', items: user }, posts: { type: 'array', items: { type: 'object' } } } },
        }),
      },
      default: failure,
    },
  },
};
