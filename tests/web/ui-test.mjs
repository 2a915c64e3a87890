// End-to-end test of the Flurry web UI in headless Chromium (playwright-core).
//
//   FLURRY_URL=http://127.0.0.1:7878 FLURRY_SCREENSHOT=/tmp/flurry-ui.png node ui-test.mjs
//
// Needs a running node (`flurry up`) on this machine with a chat model and the embedding
// model, and /usr/bin/chromium. Before the UI steps the test writes a few files (a mail,
// two notes) to a temporary directory and has the node ingest them into its memory
// (POST /api/memory/ingest names them by absolute path, so the node must see this disk).
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
const INGEST_TIMEOUT = 300_000; // the embedding model loads on first use

// The memory the test gives the node: one mail with a distinctive fact, two unrelated notes.
const QUESTION = 'What is the gate code for the boiler technician?';
const MAIL_SUBJECT = 'Boiler service on Thursday';
const MAIL = [
  'From: Alice Martin <alice@example.org>',
  'To: Bob <bob@example.org>',
  `Subject: ${MAIL_SUBJECT}`,
  'Date: Tue, 10 Nov 2026 09:30:00 +0100',
  'MIME-Version: 1.0',
  'Content-Type: text/plain; charset=utf-8',
  'Content-Transfer-Encoding: quoted-printable',
  '',
  'Hi Bob, the technician from Calor=C3=A9 comes Thursday at 8 to service the =',
  'boiler. The gate code is 4471.',
  'Alice',
  '',
].join('\r\n');
const NOTES = {
  'notes/bread.md': '# Sourdough\n\nMix flour, water and starter. Bake at 230 degrees for 40 minutes.\n',
  'notes/bike.txt': 'The bicycle chain needs oil every 300 km.\n',
};

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
  memoryToggle: '[data-testid="memory-toggle"]',
  citation: '[data-testid="citation"]',
  citeView: '[data-testid="citation-view"]',
  citeTitle: '[data-testid="citation-title"]',
  citeClose: '[data-testid="citation-close"]',
  citeStatus: '[data-testid="citation-status"]',
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

// Runs in the page: the citation links of each assistant answer, in order.
function readCitations() {
  return Array.from(document.querySelectorAll('[data-testid="message"][data-role="assistant"]')).map((m) =>
    Array.from(m.querySelectorAll('a[data-testid="citation"]')).map((a) => ({
      href: a.getAttribute('href'),
      title: a.title,
      document: a.dataset.document,
      docId: a.dataset.docId,
      chunk: a.dataset.chunk,
      forgotten: a.dataset.forgotten === 'true',
      text: a.textContent,
    })));
}

async function citations(page) {
  return page.evaluate(readCitations);
}

// Runs in the page: what the citation view shows.
function readCitationView() {
  const v = document.querySelector('[data-testid="citation-view"]');
  if (!v || v.hidden || v.getClientRects().length === 0) return null;
  const text = (s) => { const e = v.querySelector(s); return e ? e.textContent.trim() : null; };
  const cited = v.querySelector('[data-testid="citation-chunk"][data-cited="true"]');
  let citedInView = false;
  if (cited) {
    const box = cited.getBoundingClientRect();
    const body = document.getElementById('cite-body').getBoundingClientRect();
    citedInView = box.bottom > body.top && box.top < body.bottom && box.height > 0;
  }
  return {
    state: v.dataset.state,
    title: text('[data-testid="citation-title"]'),
    path: text('[data-testid="citation-path"]'),
    sender: text('[data-testid="citation-sender"]'),
    status: text('[data-testid="citation-status"]'),
    chunks: v.querySelectorAll('[data-testid="citation-chunk"]').length,
    cited: cited ? { chunk: cited.dataset.chunk, text: cited.textContent, highlighted: !!cited.querySelector('mark') } : null,
    citedInView,
    focusInside: v.contains(document.activeElement),
  };
}

async function citationView(page) {
  return page.evaluate(readCitationView);
}

async function waitForCitationView(page, what, states) {
  await waitFor(page, what, ([s, ok]) => {
    const v = document.querySelector(s);
    return !!v && !v.hidden && ok.includes(v.dataset.state);
  }, [sel.citeView, states]);
  return citationView(page);
}

function hashOf(page) {
  return decodeURIComponent(new URL(page.url()).hash.slice(1));
}

async function api(method, urlPath, body, timeout) {
  const res = await fetch(BASE + urlPath, {
    method,
    headers: body === undefined ? {} : { 'Content-Type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
    signal: AbortSignal.timeout(timeout || LOAD_TIMEOUT),
  });
  const text = await res.text();
  let json = null;
  try { json = text ? JSON.parse(text) : null; } catch (_) { /* not JSON */ }
  return { status: res.status, json, text };
}

// Writes the test's files and has the node ingest them; returns the mail's absolute path.
async function seedMemory(dir) {
  fs.mkdirSync(path.join(dir, 'mail'), { recursive: true });
  fs.mkdirSync(path.join(dir, 'notes'), { recursive: true });
  const mail = path.join(dir, 'mail', 'alice.eml');
  fs.writeFileSync(mail, MAIL);
  for (const [name, text] of Object.entries(NOTES)) fs.writeFileSync(path.join(dir, name), text);
  const r = await api('POST', '/api/memory/ingest', { paths: [dir] }, INGEST_TIMEOUT);
  check(r.status === 200, `POST /api/memory/ingest answered ${r.status}: ${r.text.slice(0, 300)}`);
  check(r.json.added === 3 && r.json.failed.length === 0, `ingest summary ${r.text}`);
  return mail;
}

// Sends the question, waits for the answer to end, returns its citations.
async function askAndWait(page, text) {
  await installStreamProbe(page);
  await sendPrompt(page, text);
  await waitFor(page, 'the answer to stream', () => window.__flurryProbe.seenStreaming, null, ANSWER_TIMEOUT);
  await waitFor(page, 'the answer to end', () => window.__flurryProbe.ended, null, ANSWER_TIMEOUT);
  const err = await visibleError(page);
  check(!err, `an error is shown: ${err}`);
  const ms = await messages(page);
  const answer = ms[ms.length - 1];
  check(answer && answer.role === 'assistant' && answer.status === 'complete',
    `the last message is ${JSON.stringify(answer)}, expected a complete answer`);
  const probe = await page.evaluate(() => window.__flurryProbe);
  const cites = await citations(page);
  return { answer, cites: cites[cites.length - 1], citedWhileStreaming: probe.citedWhileStreaming };
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
    const probe = { lengths: [], seenStreaming: false, ended: false, citedWhileStreaming: false };
    const lastAssistantLength = () => {
      const all = document.querySelectorAll('[data-testid="message"][data-role="assistant"]');
      const last = all[all.length - 1];
      if (!last) return 0;
      const c = last.querySelector('[data-testid="message-content"]');
      return (c || last).textContent.length;
    };
    const lastAssistantCites = () => {
      const all = document.querySelectorAll('[data-testid="message"][data-role="assistant"]');
      const last = all[all.length - 1];
      return !!last && !!last.querySelector('a[data-testid="citation"]');
    };
    const sample = () => {
      if (probe.ended) return;
      if (main.dataset.streaming === 'true') {
        probe.seenStreaming = true;
        const n = lastAssistantLength();
        if (probe.lengths[probe.lengths.length - 1] !== n) probe.lengths.push(n);
        if (lastAssistantCites()) probe.citedWhileStreaming = true;
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

// The message box's placeholder is shown whole at 1280×800, not cut mid-word (issue 32):
// its text width in the box's own font against the box's inner width.
async function placeholderFits(page, when) {
  const fit = await page.$eval(sel.input, (e) => {
    const cs = getComputedStyle(e);
    const ctx = document.createElement('canvas').getContext('2d');
    ctx.font = `${cs.fontStyle} ${cs.fontWeight} ${cs.fontSize} ${cs.fontFamily}`;
    const avail = e.clientWidth - parseFloat(cs.paddingLeft) - parseFloat(cs.paddingRight);
    return { text: e.placeholder, need: ctx.measureText(e.placeholder).width, avail };
  });
  check(fit.text.length > 0 && fit.need <= fit.avail,
    `${when}: the placeholder ${JSON.stringify(fit.text)} needs ${fit.need.toFixed(0)} px but the message box shows ${fit.avail.toFixed(0)} px`);
  passed(`${when}: the placeholder fits (${fit.need.toFixed(0)} of ${fit.avail.toFixed(0)} px)`);
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
  // The node ingests through its API only from folders listed in [memory] roots:
  // scripts/web-test.sh makes this folder and lists it.
  const memoryDir = process.env.FLURRY_UI_MEMORY_DIR
    || fs.mkdtempSync(path.join(os.tmpdir(), 'flurry-ui-memory-'));
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

    // memory: the node ingests a mail and two notes before the UI steps
    step = '(memory)';
    const mailPath = await seedMemory(memoryDir);
    passed(`ingested ${memoryDir} (a mail and two notes)`);

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
    await placeholderFits(page, 'no side panel open');

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
    // Sampling is not seeded here, so the answer differs from run to run. A prompt with a
    // short answer ('Say hello in five words.') sometimes got a one-token answer, whose
    // text can only arrive once; counting asks for many tokens.
    const prompt = 'Count from one to ten in words.';
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

    // g. an answer from the memory lists its sources, live from the start event
    step = 'g';
    await page.click(sel.newChat);
    await waitFor(page, 'the new chat to be empty', (s) => document.querySelectorAll(s).length === 0, sel.message);
    check(await page.isChecked(sel.memoryToggle), 'the memory switch is off in a new chat (it is on by default)');
    const g = await askAndWait(page, QUESTION);
    const hashG = hashOf(page);
    check(/^c_[^/]+$/.test(hashG), `URL hash after asking is ${JSON.stringify(hashG)}`);
    const convG = await api('GET', `/api/conversations/${encodeURIComponent(hashG)}`);
    check(convG.status === 200 && convG.json.memory === true,
      `conversation ${hashG} is stored with memory ${convG.json && convG.json.memory}, expected true`);
    const cite = g.cites.find((c) => c.document === mailPath);
    check(cite, `the answer's sources ${JSON.stringify(g.cites)} have no link to ${mailPath}`);
    check(g.citedWhileStreaming, 'the sources were not shown while the answer streamed (from the start event)');
    check(cite.text.includes(MAIL_SUBJECT) && /\[\d+\]/.test(cite.text) && cite.text.includes('alice.eml'),
      `the citation label ${JSON.stringify(cite.text)} lacks [n], the subject or the file name`);
    check(cite.title.startsWith(mailPath) && /passage \d+/.test(cite.title),
      `the citation title ${JSON.stringify(cite.title)} is not the document path and passage`);
    const citeHash = `${hashG}/doc/${cite.docId}/${cite.chunk}`;
    check(decodeURIComponent(cite.href) === `#${citeHash}`, `the citation link is ${JSON.stringify(cite.href)}, expected #${citeHash}`);
    passed(`answer ${JSON.stringify(g.answer.text.trim().slice(0, 60))} cites ${JSON.stringify(cite.text)}`);

    // h. the link opens the cited passage
    step = 'h';
    await page.click(`${sel.citation}[data-doc-id="${cite.docId}"][data-chunk="${cite.chunk}"]`);
    const viewH = await waitForCitationView(page, 'the citation view to show the document', ['ready', 'missing', 'error']);
    check(hashOf(page) === citeHash, `URL hash after the click is ${JSON.stringify(hashOf(page))}, expected ${citeHash}`);
    check(viewH.state === 'ready', `the citation view is ${viewH.state}: ${viewH.status}`);
    check(viewH.title === MAIL_SUBJECT, `the citation view title is ${JSON.stringify(viewH.title)}`);
    check(viewH.path === mailPath, `the citation view path is ${JSON.stringify(viewH.path)}, expected ${mailPath}`);
    check(viewH.sender && viewH.sender.includes('Alice Martin'), `the citation view sender is ${JSON.stringify(viewH.sender)}`);
    check(viewH.cited && viewH.cited.chunk === cite.chunk && viewH.cited.text.includes('4471'),
      `the cited passage is ${JSON.stringify(viewH.cited)}, expected chunk ${cite.chunk} containing 4471`);
    check(viewH.cited.highlighted, 'the cited passage is not highlighted');
    check(viewH.citedInView, 'the cited passage is not scrolled into view');
    check(viewH.focusInside, 'focus did not move into the citation view');
    await page.screenshot({ path: SCREENSHOT, fullPage: true });
    check(fs.statSync(SCREENSHOT).size > 1000, `screenshot ${SCREENSHOT} is empty`);
    passed(`the citation view shows passage ${viewH.cited.chunk} of ${viewH.chunks}; screenshot with sources in ${SCREENSHOT}`);

    // i. reload: the stored answer keeps its sources and the view reopens from the URL
    step = 'i';
    await page.reload({ waitUntil: 'load' });
    await waitFor(page, 'the answer to be shown after reload',
      (s) => document.querySelectorAll(s).length >= 2, sel.message);
    const viewI = await waitForCitationView(page, 'the citation view to reopen after reload', ['ready', 'missing', 'error']);
    check(viewI.state === 'ready' && viewI.cited && viewI.cited.text.includes('4471'),
      `after reload the citation view is ${JSON.stringify(viewI)}`);
    const citesI = await citations(page);
    check(citesI.length === 1 && citesI[0].some((c) => c.document === mailPath && c.text === cite.text),
      `after reload the answer's sources are ${JSON.stringify(citesI)}`);
    await page.click(sel.citeClose);
    await waitFor(page, 'the citation view to close', (s) => document.querySelector(s).hidden, sel.citeView);
    check(hashOf(page) === hashG, `URL hash after closing is ${JSON.stringify(hashOf(page))}, expected ${hashG}`);
    // Keyboard: Enter on the link opens it, Escape closes and gives focus back to the link.
    await page.focus(sel.citation);
    await page.keyboard.press('Enter');
    await waitForCitationView(page, 'the citation view to open from the keyboard', ['ready']);
    await page.keyboard.press('Escape');
    await waitFor(page, 'Escape to close the citation view', (s) => document.querySelector(s).hidden, sel.citeView);
    const focusI = await page.evaluate(() => document.activeElement && document.activeElement.dataset.testid);
    check(focusI === 'citation', `after Escape the focus is on ${JSON.stringify(focusI)}, expected the citation link`);
    check(hashOf(page) === hashG, `URL hash after Escape is ${JSON.stringify(hashOf(page))}`);
    passed('the sources and the citation view survive a reload; the view closes by button and Escape');

    // j. memory switched off for this conversation: the next answer cites nothing
    step = 'j';
    check(await page.isChecked(sel.memoryToggle), 'the memory switch is off for a conversation stored with memory on');
    await page.click(sel.memoryToggle);
    await waitFor(page, 'the memory switch to be saved',
      (s) => { const e = document.querySelector(s); return !e.disabled && !e.checked; }, sel.memoryToggle);
    const convJ = await api('GET', `/api/conversations/${encodeURIComponent(hashG)}`);
    check(convJ.json && convJ.json.memory === false, `after switching off the conversation has memory ${convJ.json && convJ.json.memory}`);
    const j = await askAndWait(page, QUESTION);
    check(j.cites.length === 0, `the answer without memory has sources ${JSON.stringify(j.cites)}`);
    check(!j.citedWhileStreaming, 'sources were shown while the answer without memory streamed');
    const citesJ = await citations(page);
    check(citesJ.length === 2 && citesJ[0].length > 0, `the earlier answer lost its sources: ${JSON.stringify(citesJ)}`);
    passed(`without memory the answer ${JSON.stringify(j.answer.text.trim().slice(0, 60))} has no sources`);

    // k. reload: the switch stays off, the sources stay where they were
    step = 'k';
    await page.reload({ waitUntil: 'load' });
    await waitFor(page, 'the four messages after reload', (s) => document.querySelectorAll(s).length >= 4, sel.message);
    check(!(await page.isChecked(sel.memoryToggle)), 'after reload the memory switch is on again');
    const citesK = await citations(page);
    check(citesK.length === 2 && citesK[0].some((c) => c.document === mailPath) && citesK[1].length === 0,
      `after reload the sources per answer are ${JSON.stringify(citesK)}`);
    passed('the memory switch and the sources persist across reload');

    // l. a new chat started with memory off is created with memory off
    step = 'l';
    await page.click(sel.newChat);
    await waitFor(page, 'the new chat to be empty', (s) => document.querySelectorAll(s).length === 0, sel.message);
    check(await page.isChecked(sel.memoryToggle), 'the memory switch is off in a new chat (it is on by default)');
    await page.uncheck(sel.memoryToggle);
    const l = await askAndWait(page, QUESTION);
    const hashL = hashOf(page);
    check(/^c_/.test(hashL) && hashL !== hashG, `URL hash of the new chat is ${JSON.stringify(hashL)}`);
    const convL = await api('GET', `/api/conversations/${encodeURIComponent(hashL)}`);
    check(convL.json && convL.json.memory === false, `the new chat is stored with memory ${convL.json && convL.json.memory}`);
    check(l.cites.length === 0, `the answer in a chat without memory has sources ${JSON.stringify(l.cites)}`);
    check(!(await page.isChecked(sel.memoryToggle)), 'the memory switch turned on after sending');
    passed(`the new chat ${hashL} was created with memory off`);

    // m. a forgotten document: the link stays, with nothing of the document (no title,
    // no path, no excerpt), and the view says the document is gone
    step = 'm';
    const del = await api('DELETE', `/api/memory/documents/${cite.docId}`);
    check(del.status === 204, `DELETE /api/memory/documents/${cite.docId} answered ${del.status}: ${del.text}`);
    await page.evaluate((h) => { location.hash = h; }, citeHash);
    await page.reload({ waitUntil: 'load' });
    const viewM = await waitForCitationView(page, 'the citation view of the forgotten document', ['ready', 'missing', 'error']);
    check(viewM.state === 'missing', `the view of a forgotten document is ${viewM.state}: ${viewM.status}`);
    check(/no longer in your memory/.test(viewM.status || ''), `the view says ${JSON.stringify(viewM.status)}`);
    check(!viewM.cited, 'the view of a forgotten document shows a passage');
    const citesM = await citations(page);
    check(citesM[0] && citesM[0].length === g.cites.length, `the answer lost its link after the document was forgotten: ${JSON.stringify(citesM)}`);
    const goneM = citesM[0].filter((c) => c.docId === String(cite.docId));
    check(goneM.length > 0 && goneM.every((c) => c.forgotten && c.document === '' && /Forgotten document/.test(c.text)),
      `the link of the forgotten document is ${JSON.stringify(goneM)}`);
    check(!JSON.stringify(citesM).includes('alice.eml') && !JSON.stringify(citesM).includes('Boiler'),
      `the forgotten document is still named: ${JSON.stringify(citesM)}`);
    const storedM = await api('GET', `/api/conversations/${encodeURIComponent(hashG)}`);
    check(storedM.status === 200 && !storedM.text.includes('alice.eml') && !storedM.text.includes('Boiler service'),
      `the stored chat still names the forgotten document: ${storedM.text.slice(0, 300)}`);
    passed(`a forgotten document shows ${JSON.stringify(viewM.status)}`);

    // n. the network page: this node's status, a diagnosis a user can act on, no peers
    step = 'n';
    await page.click('[data-testid="network-open"]');
    await waitFor(page, 'the network view to load', () => {
      const v = document.querySelector('[data-testid="network-view"]');
      return !!v && !v.hidden && (v.dataset.state === 'ready' || v.dataset.state === 'error');
    });
    const net = await page.evaluate(() => {
      const v = document.querySelector('[data-testid="network-view"]');
      const t = (s) => { const e = v.querySelector(s); return e ? e.textContent.trim() : null; };
      return {
        state: v.dataset.state,
        status: t('[data-testid="net-status"]'),
        nat: t('[data-testid="net-nat"]'),
        connected: t('[data-testid="net-connected"]'),
        listen: t('[data-testid="net-listen"]'),
        problems: Array.from(v.querySelectorAll('[data-testid="net-problem"]')).map((e) => e.textContent),
        peers: v.querySelectorAll('[data-testid="net-peer"]').length,
        noPeers: !v.querySelector('[data-testid="net-no-peers"]').hidden,
      };
    });
    check(net.state === 'ready', `the network view is ${net.state}: ${net.status}`);
    await placeholderFits(page, 'network panel open');
    const apiNet = await api('GET', '/api/net/status');
    check(apiNet.status === 200, `GET /api/net/status answered ${apiNet.status}`);
    check(net.connected === `${apiNet.json.connected} peers` && net.peers === 0 && net.noPeers,
      `the network view shows ${JSON.stringify(net)} for a node with ${apiNet.json.connected} peers`);
    check(apiNet.json.listen.every((a) => net.listen.includes(a)) && apiNet.json.listen.length > 0,
      `listen addresses ${JSON.stringify(apiNet.json.listen)} not all shown in ${JSON.stringify(net.listen)}`);
    check(net.problems.length === apiNet.json.diagnosis.length && net.problems.some((d) => d.includes('--bootstrap')),
      `the diagnosis shown is ${JSON.stringify(net.problems)}, the node says ${JSON.stringify(apiNet.json.diagnosis)}`);
    await page.keyboard.press('Escape');
    await waitFor(page, 'Escape to close the network view',
      () => document.querySelector('[data-testid="network-view"]').hidden);
    passed(`the network page shows NAT ${JSON.stringify(net.nat)}, ${net.connected}, and ${net.problems.length} problem(s) with what to do`);

    // o. privacy: the policy shown is the node's, changing it saves it to the config,
    // and what left the node is listed (nothing here: this node has no peers)
    step = 'o';
    await page.click('[data-testid="network-open"]');
    await waitFor(page, 'the privacy rules to load', () =>
      document.querySelector('[data-testid="privacy-circle"]').value === 'as-is'
      && !document.querySelector('[data-testid="egress-empty"]').hidden);
    const policyBefore = await api('GET', '/api/privacy');
    check(policyBefore.status === 200 && policyBefore.json.circle === 'as-is' && policyBefore.json.market === 'scrubbed',
      `GET /api/privacy answered ${policyBefore.status} ${JSON.stringify(policyBefore.json)}`);
    await page.selectOption('[data-testid="privacy-circle"]', 'scrubbed');
    await waitFor(page, 'the saved policy to be confirmed', () => {
      const s = document.querySelector('[data-testid="privacy-status"]');
      return !s.hidden && s.textContent.includes('scrubbed');
    });
    const policyAfter = await api('GET', '/api/privacy');
    check(policyAfter.json.circle === 'scrubbed' && policyAfter.json.market === 'scrubbed',
      `after choosing "Scrubbed" the node says ${JSON.stringify(policyAfter.json)}`);
    const egress = await api('GET', '/api/egress');
    check(egress.status === 200 && egress.json.records.length === 0
      && await page.locator('[data-testid="egress-record"]').count() === 0,
      `the egress list of a node without peers: ${JSON.stringify(egress.json)}`);
    await page.keyboard.press('Escape');
    passed('the privacy rules are the node\'s, a change is saved (the node reads it back from flurry.toml), and the egress list is empty');

    step = '(end)';
    check(pageErrors.length === 0, `uncaught errors in the page:\n${pageErrors.join('\n')}`);
    console.log('all UI steps passed');
  } finally {
    await context.close().catch(() => {});
    fs.rmSync(userDataDir, { recursive: true, force: true });
    fs.rmSync(memoryDir, { recursive: true, force: true });
  }
}

main().then(() => process.exit(0), (e) => {
  console.error(`FAIL ${e instanceof StepError ? e.message : `step ${step}: ${e && e.stack ? e.stack : e}`}`);
  process.exit(1);
});
