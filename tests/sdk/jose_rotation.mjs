// A relying party as the JOSE world writes one (npm `jose`): discovery → JWKS → verify. Run
// around a signing-key rotation: the token signed before it must still verify after it, and a
// token signed after it carries the new kid.
// argv: endpoint, a token signed before the rotation, a token signed after it, the old kid.
import { createRemoteJWKSet, jwtVerify, decodeProtectedHeader } from 'jose';

const [endpoint, before, after, oldKid] = process.argv.slice(2);
let passed = 0;
let failed = 0;
function check(name, cond, detail) {
  if (cond) { passed++; console.log(`ok   ${name}`); } else { failed++; console.log(`FAIL ${name} ${detail || ''}`); }
}

const discovery = await (await fetch(`${endpoint}/.well-known/openid-configuration`)).json();
const jwks = createRemoteJWKSet(new URL(discovery.jwks_uri));
for (const [name, token] of [['a token signed before the rotation', before], ['a token signed after it', after]]) {
  try {
    const { payload } = await jwtVerify(token, jwks, { issuer: discovery.issuer });
    check(`${name} verifies via discovery`, !!payload.sub);
  } catch (e) {
    check(`${name} verifies via discovery`, false, e.message);
  }
}
check('the old token keeps the old kid', decodeProtectedHeader(before).kid === oldKid);
check('the new token carries a new kid', decodeProtectedHeader(after).kid !== oldKid, decodeProtectedHeader(after).kid);
console.log(`${passed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
