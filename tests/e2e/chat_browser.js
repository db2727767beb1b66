// chat_browser.js - the /chat demo in a real browser: headless Debian
// chromium driven by playwright-core opens the page twice, types a message
// in one and waits for it in the other; then drops the second page's
// socket (offline), sends from the first meanwhile, and checks that the
// second page resumes with exactly the missed message. Usage:
//   node chat_browser.js <port> <path to web/node_modules>
'use strict';
const path = require('path');
const [port, modules] = process.argv.slice(2);
const { chromium } = require(path.join(modules, 'playwright-core'));

async function say(page, text) {
  await page.fill('#text', text);
  await page.click('button');
}

async function messages(page) {
  return page.$$eval('#log .msg', (els) => els.map((e) => e.textContent));
}

(async () => {
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'],
  });
  try {
    const url = 'http://127.0.0.1:' + port + '/chat';
    const a = await browser.newPage(), b = await browser.newPage();
    await a.goto(url);
    await b.goto(url);
    await a.waitForSelector('body[data-state="online"]');
    await b.waitForSelector('body[data-state="online"]');
    await a.fill('#user', 'alice');
    await say(a, 'hello from a');
    await b.waitForFunction(() => [...document.querySelectorAll('#log .msg')]
      .some((e) => e.textContent === 'alice:hello from a'), null, { timeout: 10000 });
    // b goes away (its socket is closed under it) while a keeps talking
    await b.evaluate(() => { window.__sockets_closed = true; ws.onclose = null; ws.close(); });
    await say(a, 'while b was away');
    await a.waitForFunction(() => [...document.querySelectorAll('#log .msg')]
      .some((e) => e.textContent === 'alice:while b was away'), null, { timeout: 10000 });
    await b.evaluate(() => connect()); // reconnect: resumes after the last id shown
    await b.waitForFunction(() => [...document.querySelectorAll('#log .msg')]
      .some((e) => e.textContent === 'alice:while b was away'), null, { timeout: 10000 });
    const mb = await messages(b);
    const want = ['alice:hello from a', 'alice:while b was away'];
    if (JSON.stringify(mb) !== JSON.stringify(want))
      throw new Error('page b shows ' + JSON.stringify(mb));
    if (!(await b.textContent('#status')).includes('resumed after'))
      throw new Error('page b did not say it resumed');
    console.log('ok: message typed in page a appeared in page b; resume without gap or duplicate');
  } finally {
    await browser.close();
  }
})().catch((e) => { console.error(e); process.exit(1); });
