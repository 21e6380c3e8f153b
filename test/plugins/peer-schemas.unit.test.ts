/**
 * The Slack and X test servers judge traffic by the schemas written in the
 * project (test/servers/{slack,twitter}/schemas.ts): answers as the real APIs
 * give them pass, and each kind of departure is named.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { SlackSpec } from '../servers/slack/spec.ts';
import { XSpec } from '../servers/twitter/spec.ts';

describe('Slack schemas', () => {
  const spec = new SlackSpec();
  const message = { type: 'message', subtype: 'bot_message', text: 'hi', ts: '1700000000.000001', bot_id: 'B0HUBBOT01', username: 'hub' };
  const posted = { ok: true, channel: 'C024BE91L', ts: '1700000000.000001', message };

  test('a real answer passes; a wrong ts, an extra key, a missing message and an unknown error are named', () => {
    assert.deepEqual(spec.checkResponse('chat.postMessage', posted), []);
    assert.deepEqual(spec.checkResponse('chat.postMessage', { ok: false, error: 'ratelimited' }), []);
    assert.match(spec.checkResponse('chat.postMessage', { ...posted, ts: '17.1' }).join(), /response\/ts must match pattern/);
    assert.match(spec.checkResponse('chat.postMessage', { ...posted, message: { ...message, colour: 'red' } }).join(), /response\/message must NOT have additional properties/);
    assert.match(spec.checkResponse('chat.postMessage', { ok: true, channel: 'C024BE91L', ts: '1700000000.000001' }).join(), /required property 'message'/);
    assert.match(spec.checkResponse('chat.postMessage', { ok: false, error: 'made_up' }).join(), /response\/error must be equal to one of the allowed values/);
    assert.match(spec.checkResponse('auth.test', { ok: true, url: 'u', team: 't', user: 'u', team_id: 'X1', user_id: 'U0HUBBOT01' }).join(), /team_id must match pattern/);
  });

  test('arguments: types as a form sends them, unknown and missing names', () => {
    assert.deepEqual(spec.checkRequest('chat.postMessage', { channel: 'C1', text: 'x', mrkdwn: 'true', unfurl_links: '0', token: 't' }, true), []);
    assert.deepEqual(spec.checkRequest('chat.postMessage', { text: 3, mrkdwn: 'yes' }, false), [
      'chat.postMessage: required parameter channel is missing',
      'chat.postMessage: parameter text should be a string, got 3',
      'chat.postMessage: parameter mrkdwn should be a boolean, got "yes"',
    ]);
    assert.deepEqual(spec.checkRequest('chat.delete', {}, true), ['chat.delete: not a method of the Web API spec']);
  });
});

describe('X schemas', () => {
  const spec = new XSpec();
  const TWEETS = '/2/tweets';
  const DM = '/2/dm_conversations/with/{participant_id}/messages';
  const USER = '/2/users/by/username/{username}';

  test('request bodies: closed objects, nested rules, text or attachments for a DM', () => {
    assert.deepEqual(spec.checkRequestBody('POST', TWEETS, 'application/json', { text: 'hi' }), []);
    assert.match(spec.checkRequestBody('POST', TWEETS, 'application/json', { text: 'hi', colour: 'red' }).join(), /must NOT have additional properties/);
    assert.match(spec.checkRequestBody('POST', TWEETS, 'application/json', { poll: { options: ['a'], duration_minutes: 5 } }).join(), /poll\/options must NOT have fewer than 2 items/);
    assert.match(spec.checkRequestBody('POST', TWEETS, 'application/x-www-form-urlencoded', {}).join(), /request content type "application\/x-www-form-urlencoded" is not in the spec/);
    assert.deepEqual(spec.checkRequestBody('POST', DM, 'application/json', { attachments: [{ media_id: '1' }] }), []);
    assert.notDeepEqual(spec.checkRequestBody('POST', DM, 'application/json', {}), []);
    assert.match(spec.checkRequestBody('POST', DM, 'application/json', { text: '' }).join(), /must NOT have fewer than 1 characters/);
  });

  test('parameters: patterns, form-style lists, unknown names', () => {
    const query = (q: string) => new URLSearchParams(q);
    assert.deepEqual(spec.checkParameters('GET', USER, { path: { username: 'halfshot' }, query: query('user.fields=id,name') }), []);
    assert.match(spec.checkParameters('GET', USER, { path: { username: 'much_too_long_handle' }, query: query('') }).join(), /path parameter username must match pattern/);
    assert.match(spec.checkParameters('GET', USER, { path: { username: 'x' }, query: query('user.fields=id,id') }).join(), /must NOT have duplicate items/);
    assert.match(spec.checkParameters('GET', USER, { path: { username: 'x' }, query: query('colour=red') }).join(), /query parameter colour is not in the spec/);
    assert.match(spec.checkParameters('POST', DM, { path: { participant_id: 'abc' }, query: query('') }).join(), /participant_id must match pattern/);
  });

  test('answers: 201 bodies, typed problems, generic problems and errors', () => {
    assert.deepEqual(spec.checkResponse('POST', TWEETS, 201, 'application/json', { data: { id: '1', text: 'hi', edit_history_post_ids: ['1'] } }), []);
    assert.match(spec.checkResponse('POST', TWEETS, 201, 'application/json', { data: { id: 'x1', text: 'hi' } }).join(), /data\/id must match pattern/);
    assert.deepEqual(spec.checkResponse('POST', TWEETS, 403, 'application/problem+json', { type: 'about:blank', title: 'Forbidden', detail: 'duplicate', status: 403 }), []);
    assert.match(spec.checkResponse('POST', TWEETS, 403, 'application/problem+json', { type: 'about:blank', title: 'Forbidden', detail: 'duplicate' }).join(), /required property 'status'/);
    assert.notDeepEqual(spec.checkResponse('POST', DM, 404, 'application/problem+json', { type: 'https://api.x.com/2/problems/resource-not-found', title: 'Not Found Error', detail: 'd' }), []);
    assert.notDeepEqual(spec.checkResponse('POST', TWEETS, 500, 'application/problem+json', { type: 'https://api.x.com/2/problems/made-up', title: 't', detail: 'd' }), []);
    assert.deepEqual(spec.checkResponse('GET', USER, 401, 'application/json', { code: 32, message: 'Could not authenticate you' }), []);
    assert.match(spec.checkResponse('GET', USER, 200, 'text/plain', 'x').join(), /content type text\/plain is not in the spec/);
    assert.match(spec.checkResponse('POST', DM, 201, 'application/json', { data: { dm_conversation_id: '1-2' } }).join(), /required property 'dm_event_id'/);
  });
});
