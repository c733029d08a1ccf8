// Casdoor's Node SDK (casdoor-nodejs-sdk@1.24.0), unchanged, against this server.
// argv: endpoint, a mini program user's access token, that user's name.
const { SDK } = require('casdoor-nodejs-sdk');

const [endpoint, userToken, userName] = process.argv.slice(2);
let passed = 0;
let failed = 0;
function check(name, cond, detail) {
  if (cond) { passed++; console.log(`ok   ${name}`); } else { failed++; console.log(`FAIL ${name} ${detail || ''}`); }
}

(async () => {
  const jwks = await (await fetch(`${endpoint}/.well-known/jwks`)).json();
  const x5c = jwks.keys[0].x5c[0];
  const certificate = `-----BEGIN CERTIFICATE-----\n${x5c.match(/.{1,64}/g).join('\n')}\n-----END CERTIFICATE-----\n`;
  const sdk = new SDK({
    endpoint,
    clientId: '6825f4f0af45554c8952',
    clientSecret: 'b8a2f1c9d4e7a6b5c3d2e1f0a9b8c7d6e5f4a3b2',
    certificate,
    orgName: 'demo',
    appName: 'demo-miniprogram',
  });

  const claims = sdk.parseJwtToken(userToken);
  check('parseJwtToken of a mini program sign-in token', claims.name === userName, JSON.stringify(claims));

  const res = await sdk.getUser(userName);
  check('getUser', res.data.status === 'ok' && res.data.data.name === userName, JSON.stringify(res.data));

  const user = res.data.data;
  user.displayName = 'Set by the Node SDK';
  const upd = await sdk.updateUser(user);
  check('updateUser', upd.data.status === 'ok' && upd.data.data === 'Affected', JSON.stringify(upd.data));
  const again = await sdk.getUser(userName);
  check('the new displayName is stored', again.data.data.displayName === 'Set by the Node SDK');

  const missing = await sdk.getUser('nobody-here');
  check('getUser of a missing user gives data null', missing.data.data === null);

  console.log(`${passed} passed, ${failed} failed`);
  process.exit(failed ? 1 : 0);
})().catch((e) => { console.log(`FAIL ${e.stack || e}`); console.log(`${passed} passed, ${failed + 1} failed`); process.exit(1); });
