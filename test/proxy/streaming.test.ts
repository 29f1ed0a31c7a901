/**
 * Which requests are watches and log follows, read as kube-apiserver reads them, and which
 * watch responses are JSON (the ones a cut can end with an ERROR event).
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { unauthorized } from '../../src/proxy/status.js';
import {
  isJsonMediaType,
  isStreamingRequest,
  isWatchRequest,
  watchErrorEvent,
} from '../../src/proxy/streaming.js';

describe('watch and follow, as the apiserver decodes them', () => {
  test('a boolean is false only when absent, "0" or "false" in any case', () => {
    const watches = [
      '/api/v1/pods?watch=true',
      '/api/v1/pods?resourceVersion=5&watch=true',
      '/api/v1/pods?watch=1',
      '/api/v1/pods?watch=True',
      '/api/v1/pods?watch=yes',
      '/api/v1/pods?watch',
      '/api/v1/pods?watch=',
      '/api/v1/pods?w%61tch=true',
      '/api/v1/pods?watch=%74rue',
      '/api/v1/pods?watch=false+',
    ];
    for (const path of watches) assert.equal(isWatchRequest(path), true, path);
    const lists = [
      '/api/v1/pods',
      '/api/v1/pods?watch=false',
      '/api/v1/pods?watch=FALSE',
      '/api/v1/pods?watch=0',
      '/api/v1/pods?watch=false&watch=true',
      '/api/v1/pods?watchx=true',
      '/api/v1/pods?xwatch=true',
      '/api/v1/pods?labelSelector=watch%3Dtrue',
      '/api/v1/namespaces/default/pods/watch',
    ];
    for (const path of lists) assert.equal(isWatchRequest(path), false, path);
  });

  test('pairs Go drops (a semicolon, a bad escape) do not count; the next one does', () => {
    assert.equal(isWatchRequest('/api/v1/pods?watch=true;x'), false);
    assert.equal(isWatchRequest('/api/v1/pods?watch=%zz&watch=true'), true);
    assert.equal(isWatchRequest('/api/v1/pods?watch=%zz&watch=false'), false);
  });

  test('the deprecated /watch/ paths are not looked for (a path scan on every request)', () => {
    assert.equal(isWatchRequest('/api/v1/watch/pods'), false);
  });

  test('logs -f streams; a plain log does not', () => {
    assert.equal(
      isStreamingRequest('/api/v1/namespaces/d/pods/p/log?container=c&follow=true'),
      true,
    );
    assert.equal(isStreamingRequest('/api/v1/namespaces/d/pods/p/log?follow=false'), false);
    assert.equal(isWatchRequest('/api/v1/namespaces/d/pods/p/log?follow=true'), false);
    assert.equal(isStreamingRequest('/api/v1/pods?watch=1'), true);
  });
});

describe('JSON watch responses', () => {
  test('application/json with any parameters, in any case; other encodings are not', () => {
    assert.equal(isJsonMediaType('application/json'), true);
    assert.equal(isJsonMediaType('Application/JSON; charset=utf-8'), true);
    assert.equal(isJsonMediaType('application/vnd.kubernetes.protobuf;stream=watch'), false);
    assert.equal(isJsonMediaType('application/cbor-seq'), false);
    assert.equal(isJsonMediaType('application/yaml'), false);
    assert.equal(isJsonMediaType(''), false);
  });

  test('the ERROR event is one line of JSON holding the Status the 401 carries', () => {
    const status = unauthorized('client certificate revoked (serial 1234)');
    const event = watchErrorEvent(status).toString();
    assert.equal(event.indexOf('\n'), event.length - 1);
    assert.deepEqual(JSON.parse(event), { type: 'ERROR', object: JSON.parse(status.body) });
  });
});
