// End-to-end test of the Flurry web UI in headless Chromium (playwright-core).
//
//   FLURRY_URL=http://127.0.0.1:7878 FLURRY_SCREENSHOT=/tmp/flurry-ui.png node ui-test.mjs
//
// Needs a running node (`flurry up`) with a chat model, and /usr/bin/chromium.
// Exits 0 when every step passed, 1 with a message naming the failed step otherwise.

import { chromium } from 'playwright-core';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

const BASE = (process.env.FLURRY_URL || 'http://127.0.0.1:7878').replace(/\/+$/, '');
const SCREENSHOT = process.env.FLURRY_SCREENSHOT || path.join(os.tmpdir(), 'flurry-ui.png');
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const ANSWER_TIMEOUT = 120_000; // small CPU-only model: ~60 s per answer at most
const LOAD_TIMEOUT = 30_000;

const sel = {
  peerId: '[data-testid="identity-peer-id"]',
  address: '[data-testid="identity-address"]',
  modelSelect: '[data-testid="model-select"]',
  newChat: '[data-testid="new-chat"]',
  convList: '[data-testid="conversation-list"]',
  convItem: '[data-testid="conversation-item"]',
  message: '[data-testid="message"]',
  input: '[data-testid="prompt-input"]',
  send: '[data-testid="send"]',
  stop: '[data-testid="stop"]',
  error: '[data-testid="error"]',
};

class StepError extends Error {}

let step = '(setup)';
function check(cond, message) {
  if (!cond) throw new StepError(`step ${step}: ${message}`);
}
function passed(what) {
  console.log(`ok   ${step} ${what}`);
}

// Runs in the page: the messages as {role, status, text}; the text excludes status markers.
function readMessages() {
  return Array.from(document.querySelectorAll('[data-testid="message"]')).map((m) => {
    const c = m.querySelector('[data-testid="message-content"]');
    return { role: m.dataset.role, status: m.dataset.status, text: (c || m).textContent };
  });
}

async function messages(page) {
  return page.evaluate(readMessages);
}

async function visibleError(page) {
  return page.evaluate((s) => {
    const e = document.querySelector(s);
    return e && !e.hidden && e.offsetParent !== null ? e.textContent.trim() : '';
  }, sel.error);
}

async function waitFor(page, what, fn, arg, timeout) {
  try {
    return await page.waitForFunction(fn, arg, { timeout: timeout || LOAD_TIMEOUT });
  } catch (e) {
    const err = await visibleError(page).catch(() => '');
    throw new StepError(`step ${step}: timed out waiting for ${what}` + (err ? ` (UI error: ${err})` : ''));
  }
}

// Installs, before sending, a probe that samples the last assistant bubble's text length
// on every DOM change and every 20 ms while <main data-streaming="true">.
async function installStreamProbe(page) {
  await page.evaluate(() => {
    const main = document.querySelector('main');
    const probe = { lengths: [], seenStreaming: false, ended: false };
    const lastAssistantLength = () => {
      const all = document.querySelectorAll('[data-testid="message"][data-role="assistant"]');
      const last = all[all.length - 1];
      if (!last) return 0;
      const c = last.querySelector('[data-testid="message-content"]');
      return (c || last).textContent.length;
    };
    const sample = () => {
      if (probe.ended) return;
      if (main.dataset.streaming === 'true') {
        probe.seenStreaming = true;
        const n = lastAssistantLength();
        if (probe.lengths[probe.lengths.length - 1] !== n) probe.lengths.push(n);
      } else if (probe.seenStreaming) {
        probe.ended = true;
        observer.disconnect();
        clearInterval(timer);
      }
    };
    const observer = new MutationObserver(sample);
    observer.observe(main, { attributes: true, childList: true, subtree: true, characterData: true });
    const timer = setInterval(sample, 20);
    window.__flurryProbe = probe;
  });
}

async function sendPrompt(page, text) {
  await page.fill(sel.input, text);
  const sendEnabled = await page.isEnabled(sel.send);
  check(sendEnabled, 'the Send button is disabled before sending');
  await page.click(sel.send);
}

async function main() {
  check(fs.existsSync(CHROMIUM), `${CHROMIUM} not found (install Chromium: apt-get install -y chromium)`);
  fs.mkdirSync(path.dirname(path.resolve(SCREENSHOT)), { recursive: true });
  const userDataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'flurry-ui-chromium-'));
  const context = await chromium.launchPersistentContext(userDataDir, {
    executablePath: CHROMIUM,
    headless: true,
    viewport: { width: 1280, height: 800 },
    args: [
      '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync',
    ],
  });
  const pageErrors = [];
  try {
    const page = context.pages()[0] || await context.newPage();
    page.setDefaultTimeout(LOAD_TIMEOUT);
    page.on('pageerror', (e) => pageErrors.push(String(e && e.stack ? e.stack : e)));

    // a. identity
    step = 'a';
    const resp = await page.goto(BASE + '/', { waitUntil: 'load' }).catch((e) => {
      throw new StepError(`step a: cannot open ${BASE}/: ${e.message.split('\n')[0]}`);
    });
    check(resp && resp.ok(), `GET ${BASE}/ answered ${resp && resp.status()}`);
    await waitFor(page, 'the peer id to be shown',
      (s) => { const e = document.querySelector(s); return e && e.textContent.trim().length > 3; }, sel.peerId);
    const peerText = (await page.textContent(sel.peerId)).trim();
    check(peerText.startsWith('16Uiu2'), `peer id text ${JSON.stringify(peerText)} does not start with 16Uiu2`);
    const peerTitle = await page.getAttribute(sel.peerId, 'title');
    check(peerTitle && peerTitle.startsWith('16Uiu2') && peerTitle.length >= peerText.replace('…', '').length,
      `peer id title ${JSON.stringify(peerTitle)} is not the full peer id`);
    const addrText = (await page.textContent(sel.address)).trim();
    check(/^0x[0-9a-fA-F]{4}/.test(addrText), `address text ${JSON.stringify(addrText)} does not match /^0x[0-9a-fA-F]{4}/`);
    const addrTitle = await page.getAttribute(sel.address, 'title');
    check(/^0x[0-9a-fA-F]{40}$/.test(addrTitle || ''),
      `address title ${JSON.stringify(addrTitle)} is not a full 42-character address`);
    passed(`identity: peer ${peerText}, address ${addrText} (title ${addrTitle})`);

    // b. models
    step = 'b';
    await waitFor(page, 'the model select to have an option',
      (s) => { const e = document.querySelector(s); return e && Array.from(e.options).some((o) => o.value); }, sel.modelSelect);
    const models = await page.$$eval(`${sel.modelSelect} option`, (os) => os.map((o) => o.value).filter(Boolean));
    const chosen = await page.inputValue(sel.modelSelect);
    check(models.length >= 1, 'the model select has no options');
    check(chosen, 'no model is selected');
    passed(`model select: ${models.length} option(s), selected ${chosen}`);

    // c. streaming chat
    step = 'c';
    const prompt = 'Say hello in five words.';
    await installStreamProbe(page);
    await sendPrompt(page, prompt);
    await waitFor(page, 'the answer to start streaming (<main data-streaming="true">)',
      () => window.__flurryProbe.seenStreaming, null, ANSWER_TIMEOUT);
    check(await page.isDisabled(sel.send), 'Send is enabled while streaming');
    check(await page.isEnabled(sel.stop), 'Stop is disabled while streaming');
    await waitFor(page, 'streaming to end', () => window.__flurryProbe.ended, null, ANSWER_TIMEOUT);
    const probe = await page.evaluate(() => window.__flurryProbe);
    const distinct = [...new Set(probe.lengths.filter((n) => n > 0))];
    check(distinct.length >= 2,
      `tokens did not arrive incrementally: non-empty text lengths seen while streaming: [${distinct.join(', ')}]`);
    const err = await visibleError(page);
    check(!err, `an error is shown: ${err}`);
    const msgsC = await messages(page);
    check(msgsC.length >= 2, `expected a user and an assistant message, found ${msgsC.length}`);
    const userC = msgsC[msgsC.length - 2];
    const answerC = msgsC[msgsC.length - 1];
    check(userC.role === 'user' && userC.text.trim() === prompt, `user message is ${JSON.stringify(userC)}`);
    check(answerC.role === 'assistant', `last message role is ${answerC.role}, expected assistant`);
    check(answerC.text.trim().length > 0, 'the final assistant text is empty');
    check(answerC.status === 'complete', `assistant data-status is ${answerC.status}, expected complete`);
    check(await page.isEnabled(sel.send), 'Send is still disabled after streaming ended');
    check(await page.isDisabled(sel.stop), 'Stop is still enabled after streaming ended');
    const hashC = decodeURIComponent(new URL(page.url()).hash.slice(1));
    check(/^c_/.test(hashC), `URL hash ${JSON.stringify(hashC)} is not a conversation id (c_…)`);
    passed(`streamed ${distinct.length} distinct lengths, answer ${JSON.stringify(answerC.text.trim().slice(0, 80))}`);

    // d. screenshot
    step = 'd';
    await page.screenshot({ path: SCREENSHOT, fullPage: true });
    check(fs.statSync(SCREENSHOT).size > 1000, `screenshot ${SCREENSHOT} is empty`);
    passed(`screenshot written to ${SCREENSHOT}`);

    // e. reload keeps the conversation
    step = 'e';
    await page.reload({ waitUntil: 'load' });
    await waitFor(page, `conversation ${hashC} in the conversation list`,
      ([list, item, id]) => !!document.querySelector(`${list} ${item}[data-id="${CSS.escape(id)}"]`),
      [sel.convList, sel.convItem, hashC]);
    await waitFor(page, 'the messages to be shown after reload',
      (s) => document.querySelectorAll(s).length >= 2, sel.message);
    const hashE = decodeURIComponent(new URL(page.url()).hash.slice(1));
    check(hashE === hashC, `URL hash changed across reload: ${hashC} -> ${hashE}`);
    const msgsE = await messages(page);
    const userE = msgsE.filter((m) => m.role === 'user');
    const answerE = msgsE.filter((m) => m.role === 'assistant');
    check(userE.length === 1 && userE[0].text.trim() === prompt,
      `after reload the user messages are ${JSON.stringify(userE)}`);
    check(answerE.length === 1 && answerE[0].text.trim() === answerC.text.trim(),
      `after reload the assistant text differs:\n  before: ${JSON.stringify(answerC.text)}\n  after:  ${JSON.stringify(answerE[0] && answerE[0].text)}`);
    passed(`reload reopened ${hashC} with both messages`);

    // f. stop
    step = 'f';
    await page.click(sel.newChat);
    await waitFor(page, 'the new chat to be empty', (s) => document.querySelectorAll(s).length === 0, sel.message);
    await sendPrompt(page, 'Write a very long story about a dragon.');
    await waitFor(page, 'the first token of the long answer',
      ([m]) => {
        if (document.querySelector('main').dataset.streaming !== 'true') return false;
        const all = document.querySelectorAll(`${m}[data-role="assistant"]`);
        const last = all[all.length - 1];
        return !!last && last.textContent.trim().length > 0;
      }, [sel.message], ANSWER_TIMEOUT);
    check(await page.isEnabled(sel.stop), 'Stop is disabled while streaming');
    await page.click(sel.stop);
    await waitFor(page, 'streaming to end after Stop',
      () => document.querySelector('main').dataset.streaming !== 'true', null, LOAD_TIMEOUT);
    const msgsF = await messages(page);
    const stopped = msgsF[msgsF.length - 1];
    check(stopped && stopped.role === 'assistant', `last message is ${JSON.stringify(stopped)}, expected the assistant answer`);
    check(stopped.status === 'stopped', `assistant data-status is ${stopped.status}, expected stopped`);
    check(await page.isDisabled(sel.stop), 'Stop is still enabled after stopping');
    const hashF = decodeURIComponent(new URL(page.url()).hash.slice(1));
    check(/^c_/.test(hashF) && hashF !== hashC, `URL hash after the new chat is ${JSON.stringify(hashF)}`);

    // The node notices the closed connection asynchronously: allow it a few seconds.
    let after = null;
    for (let attempt = 0; attempt < 5; attempt++) {
      await page.waitForTimeout(attempt === 0 ? 300 : 1500);
      await page.reload({ waitUntil: 'load' });
      await waitFor(page, 'the stopped conversation to load after reload',
        (s) => document.querySelectorAll(s).length >= 1, sel.message);
      await page.waitForTimeout(200);
      const ms = await messages(page);
      after = ms.filter((m) => m.role === 'assistant');
      if (after.length && after[after.length - 1].status === 'stopped') break;
    }
    const last = after && after[after.length - 1];
    check(last, 'after reload the stopped assistant message is missing');
    check(last.status === 'stopped', `after reload the assistant data-status is ${last.status}, expected stopped`);
    check(last.text.trim().length > 0, 'after reload the stopped assistant message is empty');
    const ids = await page.$$eval(sel.convItem, (els) => els.map((e) => e.dataset.id));
    check(ids.includes(hashF) && ids.includes(hashC), `conversation list ${JSON.stringify(ids)} lacks ${hashC} or ${hashF}`);
    passed(`Stop kept a partial answer (${last.text.trim().length} chars) with status stopped across reload`);

    step = '(end)';
    check(pageErrors.length === 0, `uncaught errors in the page:\n${pageErrors.join('\n')}`);
    console.log('all UI steps passed');
  } finally {
    await context.close().catch(() => {});
    fs.rmSync(userDataDir, { recursive: true, force: true });
  }
}

main().then(() => process.exit(0), (e) => {
  console.error(`FAIL ${e instanceof StepError ? e.message : `step ${step}: ${e && e.stack ? e.stack : e}`}`);
  process.exit(1);
});
