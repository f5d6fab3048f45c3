// Independent verifier for the interop test: Digital Bazaar's vc library with the
// eddsa-rdfc-2022 cryptosuite. It never touches the network: JSON-LD contexts come only from
// the files the Python side pins (ler/credentials/contexts/), DID documents only from the input
// or, for did:key, from the key itself.
//
// Usage: node verify.mjs <input.json>
//   input: {"credential": {...}, "contexts": {"<url>": "<file path>"},
//           "didDocuments": [{...}], "now": "2026-03-01T12:00:00Z",
//           "statusLists": {"<statusListCredential url>": {...}}}   (optional)
// Prints {"verified": bool, "errors": [...]} and exits 0 when verified, 1 when not, 2 on misuse.
import {readFileSync} from 'node:fs';
import {gunzipSync} from 'node:zlib';

import * as vc from '@digitalbazaar/vc';
import {DataIntegrityProof} from '@digitalbazaar/data-integrity';
import {cryptosuite as eddsaRdfc2022CryptoSuite} from
  '@digitalbazaar/eddsa-rdfc-2022-cryptosuite';
import * as Ed25519Multikey from '@digitalbazaar/ed25519-multikey';
import * as DidKey from '@digitalbazaar/did-method-key';

function fail(message) {
  process.stderr.write(`${message}\n`);
  process.exit(2);
}

const inputPath = process.argv[2];
if(!inputPath) {
  fail('usage: node verify.mjs <input.json>');
}
const input = JSON.parse(readFileSync(inputPath, 'utf8'));
if(!input.credential || !input.contexts) {
  fail('input needs "credential" and "contexts"');
}

const contexts = new Map();
for(const [url, path] of Object.entries(input.contexts)) {
  contexts.set(url, JSON.parse(readFileSync(path, 'utf8')));
}
const didDocuments = new Map(
  (input.didDocuments || []).map(doc => [doc.id, doc]));

const didKeyDriver = DidKey.driver();
didKeyDriver.use({
  multibaseMultikeyHeader: 'z6Mk',
  fromMultibase: Ed25519Multikey.from
});

const requested = [];

async function documentLoader(url) {
  requested.push(url);
  if(contexts.has(url)) {
    return {contextUrl: null, documentUrl: url, document: contexts.get(url)};
  }
  if(url.startsWith('did:key:')) {
    const document = await didKeyDriver.get({url});
    return {contextUrl: null, documentUrl: url, document};
  }
  const [did, fragment] = url.split('#');
  const didDocument = didDocuments.get(did);
  if(didDocument) {
    if(fragment === undefined) {
      return {contextUrl: null, documentUrl: url, document: didDocument};
    }
    const method = (didDocument.verificationMethod || []).find(
      vm => vm.id === url || vm.id === `#${fragment}`);
    if(method) {
      const document = {'@context': didDocument['@context'], ...method, id: url};
      return {contextUrl: null, documentUrl: url, document};
    }
  }
  throw new Error(`Refusing to load "${url}": not pinned and no network access.`);
}

const suite = new DataIntegrityProof({cryptosuite: eddsaRdfc2022CryptoSuite});

function messages(error) {
  if(!error) {
    return [];
  }
  const list = [];
  const errors = Array.isArray(error) ? error :
    (Array.isArray(error.errors) ? error.errors : [error]);
  for(const e of errors) {
    list.push(String(e && e.message ? e.message : e));
  }
  return list;
}

// Bitstring Status List check, done here from the spec: the list credential must verify with
// the same suite, then the bit at statusListIndex (bit 0 = most significant bit of byte 0) of
// the GZIP'd, multibase base64url encodedList must be 0.
const statusLists = new Map(Object.entries(input.statusLists || {}));

async function checkStatus({credential}) {
  for(const entry of [].concat(credential.credentialStatus || [])) {
    const list = statusLists.get(entry.statusListCredential);
    if(!list) {
      return {verified: false, error: new Error(
        `status list ${entry.statusListCredential} was not given`)};
    }
    const listResult = await vc.verifyCredential({
      credential: list, suite, documentLoader,
      now: input.now ? new Date(input.now) : undefined
    });
    if(!listResult.verified) {
      return {verified: false, error: new Error('status list credential does not verify')};
    }
    const encoded = list.credentialSubject.encodedList;
    const bits = gunzipSync(Buffer.from(encoded.slice(1), 'base64url'));
    const index = Number.parseInt(entry.statusListIndex, 10);
    if(bits[index >> 3] & (0x80 >> (index % 8))) {
      return {verified: false, error: new Error(`credential is revoked (${entry.statusPurpose})`)};
    }
  }
  return {verified: true};
}

const result = await vc.verifyCredential({
  credential: input.credential,
  suite,
  documentLoader,
  checkStatus,
  now: input.now ? new Date(input.now) : undefined
});

const errors = messages(result.error);
for(const r of result.results || []) {
  errors.push(...messages(r.error));
}
if(result.statusResult && !result.statusResult.verified) {
  errors.push(...messages(result.statusResult.error));
}
process.stdout.write(JSON.stringify({
  verified: result.verified === true,
  errors: [...new Set(errors)],
  documentsRequested: requested
}) + '\n');
process.exit(result.verified === true ? 0 : 1);
