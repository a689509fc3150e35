// Checks an outcome-audit attestation, exported as a Sigstore bundle v0.3, with the npm
// package @sigstore/verify, which never saw this code.
//
//   outcome-audit export-sigstore BUNDLE --out attestation.sigstore.json
//   node check.mjs attestation.sigstore.json TRUSTED.pub.pem
//
// Run it from the folder where the packages were installed (it resolves them from the
// current folder); the versions tested are pinned in run.sh beside this file.
//
// The Sigstore bundle carries no certificate, transparency-log entry or timestamp: its
// `verificationMaterial.publicKey.hint` names the signing key, and this script is the
// verifier that supplies trusted material for that hint, the raw ed25519 key from
// TRUSTED.pub.pem under its securesystemslib key id. Every case prints one line; the
// exit status is 1 if an unchanged bundle is rejected or a tampered one accepted.

import { createHash, createPublicKey, generateKeyPairSync } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';

const require = createRequire(join(process.cwd(), 'package.json'));
const { bundleFromJSON } = require('@sigstore/bundle');
const { Verifier, toSignedEntity, toTrustMaterial } = require('@sigstore/verify');
const { PublicKeyDetails } = require('@sigstore/protobuf-specs');

const [bundlePath, keyPath] = process.argv.slice(2);
if (!bundlePath || !keyPath) {
  console.error('usage: node check.mjs SIGSTORE_BUNDLE.json TRUSTED.pub.pem');
  process.exit(2);
}

// The securesystemslib key id of an ed25519 key: sha256 of the compact, sorted-key JSON
// {"keytype":"ed25519","keyval":{"public":"<hex>"},"scheme":"ed25519"}.
function keyid(publicKey) {
  const raw = publicKey.export({ format: 'jwk' }).x;
  const hex = Buffer.from(raw, 'base64url').toString('hex');
  const canonical = `{"keytype":"ed25519","keyval":{"public":"${hex}"},"scheme":"ed25519"}`;
  return createHash('sha256').update(canonical).digest('hex');
}

// Trusted material: no certificate authorities, logs or timestamp authorities; one
// public key, under the hint `hint`.
function trustedKey(hint, publicKey) {
  const root = {
    mediaType: 'application/vnd.dev.sigstore.trustedroot+json;version=0.1',
    tlogs: [],
    certificateAuthorities: [],
    ctlogs: [],
    timestampAuthorities: [],
  };
  const keys = {
    [hint]: {
      rawBytes: publicKey.export({ format: 'der', type: 'spki' }),
      keyDetails: PublicKeyDetails.PKIX_ED25519,
      validFor: undefined,
    },
  };
  return toTrustMaterial(root, keys);
}

const trusted = createPublicKey(readFileSync(keyPath));
const trustedId = keyid(trusted);
const json = JSON.parse(readFileSync(bundlePath, 'utf8'));
console.log(`sigstore bundle ${bundlePath}, key ${keyPath} (key id ${trustedId})`);

let wrong = 0;
function check(name, expectAccept, run) {
  let accepted;
  let detail;
  try {
    detail = run();
    accepted = true;
  } catch (e) {
    accepted = false;
    detail = `${e.name}${e.code ? ` ${e.code}` : ''}: ${e.message}`;
  }
  const right = accepted === expectAccept;
  if (!right) wrong++;
  console.log(
    `${right ? 'ok  ' : 'FAIL'} [@sigstore/verify] ${name}: ${accepted ? 'accepted' : 'rejected'}` +
      (detail ? ` (${detail})` : ''),
  );
}

// Parse (bundleFromJSON validates the v0.3 shape) and verify with no log or timestamp
// required: trust comes only from the key the verifier holds for the hint.
function verify(bundleJson, trust) {
  return () => {
    const bundle = bundleFromJSON(bundleJson);
    if (bundle.mediaType !== 'application/vnd.dev.sigstore.bundle.v0.3+json') {
      throw new Error(`mediaType is ${bundle.mediaType}`);
    }
    const verifier = new Verifier(trust, { tlogThreshold: 0, ctlogThreshold: 0, timestampThreshold: 0 });
    verifier.verify(toSignedEntity(bundle));
    return `payload ${bundle.content.dsseEnvelope.payload.length} bytes, hint ${bundle.verificationMaterial.content.publicKey.hint}`;
  };
}

// `json` with one byte of the base64 field at `path` changed (lowest bit flipped).
function flipped(path) {
  const copy = structuredClone(json);
  let parent = copy;
  for (const key of path.slice(0, -1)) parent = parent[key];
  const last = path[path.length - 1];
  const bytes = Buffer.from(parent[last], 'base64');
  bytes[Math.floor(bytes.length / 2)] ^= 0x01;
  parent[last] = bytes.toString('base64');
  return copy;
}

const hint = json.verificationMaterial?.publicKey?.hint;
check('the hint is the trusted key\'s key id', true, () => {
  if (hint !== trustedId) throw new Error(`hint ${hint}, trusted key ${trustedId}`);
  return hint;
});
check('unchanged bundle, trusted key under its hint', true, verify(json, trustedKey(trustedId, trusted)));
check('one byte of the payload changed', false, verify(flipped(['dsseEnvelope', 'payload']), trustedKey(trustedId, trusted)));
check('one byte of the signature changed', false, verify(flipped(['dsseEnvelope', 'signatures', 0, 'sig']), trustedKey(trustedId, trusted)));
const other = generateKeyPairSync('ed25519').publicKey;
check('another ed25519 key under the same hint', false, verify(json, trustedKey(trustedId, other)));
check('no trusted key for the hint', false, verify(json, trustedKey(keyid(other), trusted)));

if (wrong > 0) {
  console.error(`FAILED: ${wrong} case(s) came out wrong`);
  process.exit(1);
}
console.log('all cases as expected');
