// Drives sf-sim with the real jsforce (pinned 3.10.16). Prints one JSON object with results;
// the Rust test asserts on it. Env: SF_LOGIN_URL, SF_INSTANCE_URL, SF_ACCESS_TOKEN (already
// expired by the test), SF_REFRESH_TOKEN, SF_CLIENT_ID, SF_CLIENT_SECRET.
const jsforce = require('jsforce');

async function main() {
  const env = process.env;
  const out = {};
  const oauth2 = new jsforce.OAuth2({
    loginUrl: env.SF_LOGIN_URL,
    clientId: env.SF_CLIENT_ID,
    clientSecret: env.SF_CLIENT_SECRET,
    redirectUri: 'http://localhost:9999/callback',
  });
  const conn = new jsforce.Connection({
    oauth2,
    instanceUrl: env.SF_INSTANCE_URL,
    accessToken: env.SF_ACCESS_TOKEN,
    refreshToken: env.SF_REFRESH_TOKEN,
    version: '62.0',
  });
  out.refreshed = false;
  conn.on('refresh', () => { out.refreshed = true; });

  // 1. Query across pages (the expired session is refreshed transparently on the first call).
  const records = [];
  await new Promise((resolve, reject) => {
    conn.query('SELECT Id, LastName, Phone FROM Lead ORDER BY LastName')
      .on('record', (r) => records.push(r))
      .on('end', resolve)
      .on('error', reject)
      .run({ autoFetch: true, maxFetch: 100000 });
  });
  out.queried = records.length;
  out.firstType = records[0].attributes.type;
  out.limitUsed = conn.limitInfo && conn.limitInfo.apiUsage ? conn.limitInfo.apiUsage.used : null;

  // 2. CRUD.
  const created = await conn.sobject('Lead').create({ LastName: '山田', Company: '株式会社JS', Phone: '03-1234-5678' });
  out.created = created.success === true && typeof created.id === 'string';
  const upd = await conn.sobject('Lead').update({ Id: created.id, Phone: '090-0000-1111' });
  out.updated = upd.success === true;
  const got = await conn.sobject('Lead').retrieve(created.id);
  out.retrievedPhone = got.Phone;
  const del = await conn.sobject('Lead').destroy(created.id);
  out.deleted = del.success === true;

  // 3. sObject Collections (arrays go through /composite/sobjects).
  const many = await conn.sobject('Contact').create([{ LastName: 'A' }, { LastName: 'B' }], { allOrNone: true });
  out.collectionCreated = many.filter((r) => r.success).length;
  const bad = await conn.sobject('Contact').create([{ LastName: 'C' }, { FirstName: 'no last name' }], { allOrNone: true });
  out.collectionErrors = bad.map((r) => (r.errors[0] || {}).statusCode || null);

  // 4. Composite through the generic request API.
  const comp = await conn.requestPost('/services/data/v62.0/composite', {
    allOrNone: false,
    compositeRequest: [
      { method: 'POST', url: '/services/data/v62.0/sobjects/Account', referenceId: 'acc', body: { Name: '株式会社コンポジット' } },
      { method: 'POST', url: '/services/data/v62.0/sobjects/Contact', referenceId: 'con', body: { LastName: '佐藤', AccountId: '@{acc.id}' } },
    ],
  });
  out.compositeStatuses = comp.compositeResponse.map((r) => r.httpStatusCode);

  // 5. SOSL search.
  const found = await conn.search('FIND {0312345678} IN PHONE FIELDS RETURNING Lead(Id, Phone)');
  out.searchCount = found.searchRecords.length;

  // 6. An error parsed into jsforce's own error type.
  try {
    await conn.sobject('Lead').create({ LastName: 'no company' });
    out.errorCode = 'none';
  } catch (e) {
    out.errorCode = e.errorCode;
    out.errorName = e.name;
  }
  try {
    await conn.query('SELECT Id, Nope FROM Lead');
  } catch (e) {
    out.queryErrorCode = e.errorCode;
  }

  // 7. Identity and the authorization-code flow.
  const idn = await conn.identity();
  out.identityUser = idn.user_id;
  const authUrl = oauth2.getAuthorizationUrl({ state: 'st8' });
  const r = await fetch(authUrl, { redirect: 'manual' });
  const loc = new URL(r.headers.get('location'));
  out.state = loc.searchParams.get('state');
  const conn2 = new jsforce.Connection({ oauth2, version: '62.0' });
  const userInfo = await conn2.authorize(loc.searchParams.get('code'));
  out.authorizedInstance = conn2.instanceUrl;
  out.authorizedOrg = userInfo.organizationId;
  out.hasRefreshToken = typeof conn2.refreshToken === 'string';
  const lim = await conn2.limits();
  out.limitsMax = lim.DailyApiRequests.Max;
  await oauth2.revokeToken(conn2.refreshToken);
  try {
    await oauth2.refreshToken(conn2.refreshToken);
    out.refreshAfterRevoke = 'ok';
  } catch (e) {
    out.refreshAfterRevoke = e.name;
  }
  console.log(JSON.stringify(out));
}

main().catch((e) => {
  console.error('FAILED', e && e.stack ? e.stack : e);
  process.exit(1);
});
