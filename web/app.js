// Flurry web UI. Plain ES2020, no dependencies; served by the node at /app.js.
// Model output is only ever written with textContent, never as HTML.
'use strict';

(() => {
  const TOKEN_KEY = 'flurry.apiToken';

  const $ = (id) => document.getElementById(id);
  const el = {
    app: $('app'),
    main: $('main'),
    sidebar: $('sidebar'),
    scrim: $('scrim'),
    menuBtn: $('menu-btn'),
    newChat: $('new-chat'),
    convList: $('conversation-list'),
    convEmpty: $('conv-empty'),
    convTitle: $('conv-title'),
    peerId: $('identity-peer-id'),
    address: $('identity-address'),
    version: $('identity-version'),
    forgetToken: $('forget-token'),
    modelSelect: $('model-select'),
    memoryToggle: $('memory-toggle'),
    messages: $('messages'),
    messagesInner: $('messages-inner'),
    emptyState: $('empty-state'),
    error: $('error'),
    errorText: $('error-text'),
    errorClose: $('error-close'),
    composer: $('composer'),
    input: $('prompt-input'),
    send: $('send'),
    stop: $('stop'),
    tokenOverlay: $('token-overlay'),
    tokenForm: $('token-form'),
    tokenInput: $('token-input'),
    tokenHint: $('token-hint'),
    citeView: $('citation-view'),
    citeTitle: $('cite-title'),
    citeClose: $('cite-close'),
    citeBody: $('cite-body'),
    citeMeta: $('cite-meta'),
    citeStatus: $('cite-status'),
    citeChunks: $('cite-chunks'),
    netOpen: $('network-open'),
    netView: $('network-view'),
    netClose: $('network-close'),
    netTitle: $('net-title'),
    netStatus: $('net-status'),
    netMeta: $('net-meta'),
    netDiagnosis: $('net-diagnosis'),
    netPeers: $('net-peers'),
    netNoPeers: $('net-no-peers'),
    privacyCircle: $('privacy-circle'),
    privacyMarket: $('privacy-market'),
    privacyStatus: $('privacy-status'),
    egressList: $('egress-list'),
    egressEmpty: $('egress-empty'),
  };

  const state = {
    token: readToken(),
    currentId: null, // id of the conversation shown, null for a new chat
    conversations: [],
    defaultModel: null,
    streaming: false,
    abort: null, // AbortController of the running answer
    loadSeq: 0, // guards against out-of-order conversation loads
    memoryPatch: null, // the PATCH of the memory switch in flight, awaited before sending
    cite: { key: null, seq: 0, opener: null, focus: false }, // the cited passage shown, if any
  };

  // ---------------------------------------------------------------- storage

  function readToken() {
    try { return localStorage.getItem(TOKEN_KEY) || ''; } catch (_) { return ''; }
  }

  function writeToken(token) {
    state.token = token;
    try {
      if (token) localStorage.setItem(TOKEN_KEY, token);
      else localStorage.removeItem(TOKEN_KEY);
    } catch (_) { /* storage disabled: keep it for this page only */ }
    el.forgetToken.hidden = !token;
  }

  // -------------------------------------------------------------------- API

  class ApiError extends Error {
    constructor(status, message, auth) {
      super(message);
      this.status = status;
      this.auth = !!auth;
    }
  }

  function authHeaders(extra) {
    const h = Object.assign({ Accept: 'application/json' }, extra || {});
    if (state.token) h.Authorization = 'Bearer ' + state.token;
    return h;
  }

  async function errorFrom(res) {
    let message = '';
    try {
      const text = await res.text();
      try {
        const j = JSON.parse(text);
        if (j && j.error) message = typeof j.error === 'string' ? j.error : (j.error.message || '');
      } catch (_) {
        message = text.slice(0, 300);
      }
    } catch (_) { /* body unreadable */ }
    if (!message) message = `${res.status} ${res.statusText || 'request failed'}`;
    return new ApiError(res.status, message, res.status === 401);
  }

  // fetch() wrapper: bearer token, JSON body, OpenAI error shape, 401 -> token form.
  // With opts.raw the Response itself is returned (for streaming).
  async function request(method, path, body, opts) {
    opts = opts || {};
    const init = { method, headers: authHeaders(), signal: opts.signal };
    if (body !== undefined) {
      init.headers['Content-Type'] = 'application/json';
      init.body = JSON.stringify(body);
    }
    if (opts.accept) init.headers.Accept = opts.accept;
    let res;
    try {
      res = await fetch(path, init);
    } catch (e) {
      if (e && e.name === 'AbortError') throw e;
      throw new ApiError(0, 'Cannot reach the node: ' + (e && e.message ? e.message : e));
    }
    if (res.status === 401) {
      const err = await errorFrom(res);
      askForToken(err.message);
      throw err;
    }
    if (!res.ok) throw await errorFrom(res);
    if (opts.raw) return res;
    if (res.status === 204) return null;
    const text = await res.text();
    return text ? JSON.parse(text) : null;
  }

  const api = {
    node: () => request('GET', '/api/node'),
    models: () => request('GET', '/v1/models'),
    list: () => request('GET', '/api/conversations'),
    get: (id) => request('GET', '/api/conversations/' + encodeURIComponent(id)),
    create: (body) => request('POST', '/api/conversations', body),
    patch: (id, body) => request('PATCH', '/api/conversations/' + encodeURIComponent(id), body),
    document: (docId) => request('GET', '/api/memory/documents/' + encodeURIComponent(docId)),
    netStatus: () => request('GET', '/api/net/status'),
    netPeers: () => request('GET', '/api/net/peers'),
    privacy: () => request('GET', '/api/privacy'),
    setPrivacy: (body) => request('PUT', '/api/privacy', body),
    egress: () => request('GET', '/api/egress?limit=20'),
    remove: (id) => request('DELETE', '/api/conversations/' + encodeURIComponent(id)),
    send: (id, body, signal) => request('POST', '/api/conversations/' + encodeURIComponent(id) + '/messages', body,
      { raw: true, signal, accept: 'text/event-stream' }),
  };

  // Server-Sent Events over a fetch() body: yields the data of each event.
  async function* sseData(body) {
    const reader = body.getReader();
    const decoder = new TextDecoder();
    let buf = '';
    let data = [];
    const takeLines = function* (final) {
      for (;;) {
        const m = /\r\n|\r|\n/.exec(buf);
        if (!m) break;
        if (!final && m[0] === '\r' && m.index === buf.length - 1) break; // may be half of \r\n
        const line = buf.slice(0, m.index);
        buf = buf.slice(m.index + m[0].length);
        if (line === '') {
          if (data.length) { yield data.join('\n'); data = []; }
          continue;
        }
        if (line.startsWith(':')) continue; // comment / keep-alive
        const colon = line.indexOf(':');
        const field = colon < 0 ? line : line.slice(0, colon);
        let value = colon < 0 ? '' : line.slice(colon + 1);
        if (value.startsWith(' ')) value = value.slice(1);
        if (field === 'data') data.push(value);
      }
    };
    try {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buf += decoder.decode(value, { stream: true });
        yield* takeLines(false);
      }
      buf += decoder.decode();
      if (buf) buf += '\n';
      yield* takeLines(true);
      if (data.length) yield data.join('\n');
    } finally {
      try { reader.releaseLock(); } catch (_) { /* already released */ }
    }
  }

  // ------------------------------------------------------------------ errors

  function showError(message) {
    el.errorText.textContent = message;
    el.error.hidden = false;
  }

  function clearError() {
    el.error.hidden = true;
    el.errorText.textContent = '';
  }

  function reportError(e) {
    if (e && e.auth) return; // the token form is shown instead
    if (e && e.name === 'AbortError') return;
    showError(e && e.message ? e.message : String(e));
  }

  // ------------------------------------------------------------------- token

  function askForToken(serverMessage) {
    if (!el.tokenOverlay.hidden) return;
    el.tokenHint.textContent = state.token
      ? 'The node rejected the stored API token' + (serverMessage ? ' (' + serverMessage + ')' : '') + '. Enter a valid token.'
      : 'This node requires an API token. Create one on the node with `flurry token create` and paste it here.';
    el.tokenInput.value = '';
    el.tokenOverlay.hidden = false;
    setTimeout(() => el.tokenInput.focus(), 0);
  }

  el.tokenForm.addEventListener('submit', (ev) => {
    ev.preventDefault();
    const token = el.tokenInput.value.trim();
    if (!token) { el.tokenInput.focus(); return; }
    writeToken(token);
    el.tokenOverlay.hidden = true;
    el.tokenInput.value = '';
    boot();
  });

  el.forgetToken.addEventListener('click', () => {
    writeToken('');
    boot();
  });

  // ---------------------------------------------------------------- identity

  function shorten(s, head, tail) {
    if (!s || s.length <= head + tail + 1) return s || '';
    return s.slice(0, head) + '…' + s.slice(-tail);
  }

  // The visible text is shortened; the title attribute holds the full value.
  function setIdentity(node, full, head, tail) {
    node.dataset.full = full || '';
    node.title = full || '';
    node.textContent = full ? shorten(full, head, tail) : '-';
    node.setAttribute('aria-label', full ? full + ' (click to copy)' : '');
  }

  async function copyText(text) {
    try {
      if (navigator.clipboard && window.isSecureContext) {
        await navigator.clipboard.writeText(text);
        return true;
      }
    } catch (_) { /* fall back below */ }
    const ta = document.createElement('textarea');
    ta.value = text;
    ta.setAttribute('readonly', '');
    ta.style.position = 'fixed';
    ta.style.opacity = '0';
    document.body.appendChild(ta);
    ta.select();
    let ok = false;
    try { ok = document.execCommand('copy'); } catch (_) { ok = false; }
    ta.remove();
    return ok;
  }

  for (const node of [el.peerId, el.address]) {
    node.addEventListener('click', async () => {
      const full = node.dataset.full;
      if (!full) return;
      const ok = await copyText(full);
      node.classList.add(ok ? 'copied' : 'copy-failed');
      setTimeout(() => node.classList.remove('copied', 'copy-failed'), 1200);
    });
  }

  async function loadNode() {
    const node = await api.node();
    setIdentity(el.peerId, node.peer_id, 10, 6);
    setIdentity(el.address, node.address, 6, 4);
    el.version.textContent = node.version ? 'Flurry v' + node.version : '';
    state.defaultModel = node.default_model || null;
    return node;
  }

  // ------------------------------------------------------------------ models

  function hasModel(name) {
    return Array.from(el.modelSelect.options).some((o) => o.value === name);
  }

  function selectModel(name) {
    if (name && hasModel(name)) el.modelSelect.value = name;
  }

  async function loadModels() {
    const previous = el.modelSelect.value;
    const list = await api.models();
    const ids = (list && Array.isArray(list.data) ? list.data : []).map((m) => m.id).filter(Boolean);
    el.modelSelect.textContent = '';
    for (const id of ids) {
      const opt = document.createElement('option');
      opt.value = id;
      opt.textContent = id;
      el.modelSelect.appendChild(opt);
    }
    if (!ids.length) {
      const opt = document.createElement('option');
      opt.value = '';
      opt.textContent = 'default model';
      el.modelSelect.appendChild(opt);
    }
    if (previous && hasModel(previous)) selectModel(previous);
    else selectModel(state.defaultModel);
  }

  // ----------------------------------------------------------- conversations

  function renderConversationList() {
    el.convList.textContent = '';
    for (const c of state.conversations) {
      const li = document.createElement('li');
      li.className = 'conv-item' + (c.id === state.currentId ? ' active' : '');
      li.dataset.testid = 'conversation-item';
      li.dataset.id = c.id;

      const open = document.createElement('button');
      open.type = 'button';
      open.className = 'conv-open';
      open.textContent = c.title || 'New chat';
      open.title = c.title || 'New chat';
      if (c.id === state.currentId) open.setAttribute('aria-current', 'page');
      open.addEventListener('click', () => {
        closeSidebar();
        if (c.id !== state.currentId) navigateTo(c.id);
      });

      const del = document.createElement('button');
      del.type = 'button';
      del.className = 'conv-delete';
      del.dataset.testid = 'conversation-delete';
      del.setAttribute('aria-label', 'Delete conversation');
      del.title = 'Delete conversation';
      del.textContent = '×';
      let armed = null;
      del.addEventListener('click', async (ev) => {
        ev.stopPropagation();
        if (!armed) { // first click arms, second click deletes
          del.textContent = 'Delete?';
          del.classList.add('armed');
          armed = setTimeout(() => {
            armed = null;
            del.textContent = '×';
            del.classList.remove('armed');
          }, 3000);
          return;
        }
        clearTimeout(armed);
        armed = null;
        await deleteConversation(c.id);
      });

      li.append(open, del);
      el.convList.appendChild(li);
    }
    el.convEmpty.hidden = state.conversations.length > 0;
  }

  async function refreshConversations() {
    const res = await api.list();
    state.conversations = res && Array.isArray(res.conversations) ? res.conversations : [];
    state.conversations.sort((a, b) => (b.updated_at || 0) - (a.updated_at || 0));
    renderConversationList();
    updateTitle();
  }

  function updateTitle() {
    const c = state.conversations.find((x) => x.id === state.currentId);
    const title = state.currentId ? ((c && c.title) || 'New chat') : 'New chat';
    el.convTitle.textContent = title;
    document.title = state.currentId && c && c.title ? c.title + ' · Flurry' : 'Flurry';
  }

  async function deleteConversation(id) {
    clearError();
    try {
      if (id === state.currentId) stopStreaming();
      await api.remove(id);
    } catch (e) {
      if (e.status !== 404) { reportError(e); return; }
    }
    state.conversations = state.conversations.filter((c) => c.id !== id);
    if (id === state.currentId) startNewChat();
    renderConversationList();
  }

  // ---------------------------------------------------------------- messages

  const STATUS_LABEL = { stopped: 'stopped', interrupted: 'interrupted', error: 'error' };

  function clearMessages() {
    el.messagesInner.textContent = '';
    el.messagesInner.appendChild(el.emptyState);
    el.emptyState.hidden = false;
  }

  function setStatus(bubble, status) {
    bubble.dataset.status = status;
    let marker = bubble.querySelector('.msg-marker');
    const label = STATUS_LABEL[status];
    if (!label) { if (marker) marker.remove(); return; }
    if (!marker) {
      marker = document.createElement('span');
      marker.className = 'msg-marker';
      marker.dataset.testid = 'message-marker';
      bubble.querySelector('.msg-content').after(marker);
    }
    marker.dataset.kind = status;
    marker.textContent = label;
    marker.title = status === 'stopped' ? 'You stopped this answer'
      : status === 'interrupted' ? 'The node stopped while answering' : 'The answer failed';
  }

  function addMessage(msg) {
    el.emptyState.hidden = true;
    const bubble = document.createElement('div');
    bubble.className = 'msg msg-' + (msg.role || 'assistant');
    bubble.dataset.testid = 'message';
    bubble.dataset.role = msg.role || 'assistant';
    if (msg.id !== undefined && msg.id !== null) bubble.dataset.id = String(msg.id);
    const content = document.createElement('div');
    content.className = 'msg-content';
    content.dataset.testid = 'message-content';
    content.textContent = msg.content || '';
    bubble.appendChild(content);
    setStatus(bubble, msg.status || 'complete');
    el.messagesInner.appendChild(bubble);
    if (msg.citations) renderSources(bubble, msg.citations, state.currentId);
    return bubble;
  }

  function fileName(source) {
    const s = String(source || '');
    return s.slice(s.lastIndexOf('/') + 1) || s;
  }

  // Links of a citation: #<conversation>/doc/<doc_id>/<chunk> (see route()).
  function citationHref(convId, c) {
    return '#' + encodeURIComponent(convId) + '/doc/' + encodeURIComponent(c.doc_id) + '/' + encodeURIComponent(c.chunk);
  }

  // The "Sources" list under an answer: one link per memory passage the answer was given.
  function renderSources(bubble, citations, convId) {
    const old = bubble.querySelector('.msg-sources');
    if (old) old.remove();
    const list = (Array.isArray(citations) ? citations : [])
      .filter((c) => c && c.doc_id !== undefined && c.doc_id !== null);
    if (!list.length || !convId) return;
    const box = document.createElement('div');
    box.className = 'msg-sources';
    box.dataset.testid = 'sources';
    const label = document.createElement('span');
    label.className = 'msg-sources-label';
    label.textContent = 'Sources';
    label.setAttribute('aria-hidden', 'true');
    const ol = document.createElement('ol');
    ol.setAttribute('aria-label', 'Sources from your memory');
    for (const c of list) {
      const li = document.createElement('li');
      const a = document.createElement('a');
      a.className = 'cite-link';
      a.dataset.testid = 'citation';
      a.href = citationHref(convId, c);
      a.dataset.docId = String(c.doc_id);
      a.dataset.chunk = String(c.chunk);
      a.dataset.document = c.document || '';
      const chunk = Number(c.chunk);
      const index = document.createElement('span');
      index.className = 'cite-index';
      index.textContent = '[' + (c.index !== undefined ? c.index : '?') + ']';
      const name = document.createElement('span');
      name.className = 'cite-name';
      if (c.forgotten) {
        // The document was forgotten: its title, path and excerpt were erased.
        a.dataset.forgotten = 'true';
        a.classList.add('cite-forgotten');
        a.title = 'This source was forgotten';
        name.textContent = 'Forgotten document';
        a.append(index, ' ', name);
      } else {
        a.title = (c.document || '') + ', passage ' + (Number.isFinite(chunk) ? chunk + 1 : c.chunk);
        name.textContent = c.title || fileName(c.document);
        const file = document.createElement('span');
        file.className = 'cite-file';
        file.textContent = fileName(c.document);
        a.append(index, ' ', name, ' ', file);
      }
      a.addEventListener('click', () => { state.cite.opener = a; state.cite.focus = true; });
      li.appendChild(a);
      ol.appendChild(li);
    }
    box.append(label, ol);
    bubble.appendChild(box);
    markActiveCitation();
  }

  function renderMessages(messages) {
    clearMessages();
    for (const m of messages || []) addMessage(m);
    scrollToBottom(true);
  }

  function nearBottom() {
    const m = el.messages;
    return m.scrollHeight - m.scrollTop - m.clientHeight < 80;
  }

  function scrollToBottom(force) {
    if (force || nearBottom()) el.messages.scrollTop = el.messages.scrollHeight;
  }

  // ------------------------------------------------------------- navigation

  // #c_<id> opens a conversation; #c_<id>/doc/<doc_id>/<chunk> also shows a cited passage.
  function route() {
    const parts = location.hash.replace(/^#/, '').split('/').map((p) => {
      try { return decodeURIComponent(p); } catch (_) { return p; }
    });
    const id = parts[0] && parts[0].startsWith('c_') ? parts[0] : null;
    let doc = null;
    if (id && parts[1] === 'doc' && /^\d+$/.test(parts[2] || '')) {
      doc = { id: parts[2], chunk: /^\d+$/.test(parts[3] || '') ? Number(parts[3]) : null };
    }
    return { id, doc };
  }

  function idFromHash() {
    return route().id;
  }

  function navigateTo(id) {
    stopStreaming();
    if (idFromHash() !== id) location.hash = id; // hashchange -> openConversation
    else openConversation(id);
  }

  function startNewChat() {
    stopStreaming();
    state.loadSeq++;
    state.currentId = null;
    if (location.hash) history.pushState(null, '', location.pathname + location.search);
    closeCitation(false);
    setMemoryToggle(true); // memory is on for a new chat unless switched off before sending
    clearMessages();
    clearError();
    renderConversationList();
    updateTitle();
    el.input.focus();
  }

  async function openConversation(id) {
    const seq = ++state.loadSeq;
    state.currentId = id;
    clearError();
    renderConversationList();
    updateTitle();
    syncCitation(); // the document loads alongside the conversation
    const listed = state.conversations.find((c) => c.id === id);
    if (listed) setMemoryToggle(listed.memory);
    try {
      const conv = await api.get(id);
      if (seq !== state.loadSeq) return;
      renderMessages(conv.messages);
      selectModel(conv.model);
      setMemoryToggle(conv.memory);
      if (!state.conversations.some((c) => c.id === id)) {
        state.conversations.unshift(conv);
        renderConversationList();
      }
      updateTitle();
    } catch (e) {
      if (seq !== state.loadSeq) return;
      if (e.status === 404) {
        startNewChat();
        showError('Conversation ' + id + ' was not found.');
      } else {
        clearMessages();
        closeCitation(false);
        reportError(e);
      }
    }
  }

  window.addEventListener('hashchange', () => {
    const id = idFromHash();
    if (id === state.currentId) { syncCitation(); return; }
    stopStreaming();
    if (id) openConversation(id);
    else startNewChat();
  });

  // --------------------------------------------------------------- sending

  function setStreaming(on) {
    state.streaming = on;
    el.main.dataset.streaming = on ? 'true' : 'false';
    el.send.disabled = on;
    el.stop.disabled = !on;
  }

  function stopStreaming() {
    if (state.abort) state.abort.abort();
  }

  async function sendMessage() {
    const text = el.input.value;
    if (!text.trim() || state.streaming) return;
    clearError();
    const model = el.modelSelect.value || undefined;
    setStreaming(true);
    // A switch of the memory just made must reach the node before the message does.
    if (state.memoryPatch) await state.memoryPatch;

    let id = state.currentId;
    if (!id) {
      try {
        const create = { memory: el.memoryToggle.checked };
        if (model) create.model = model;
        const conv = await api.create(create);
        id = conv.id;
        state.currentId = id;
        state.loadSeq++;
        state.conversations = [conv].concat(state.conversations.filter((c) => c.id !== id));
        location.hash = id; // ignored by the hashchange handler (same id)
        renderConversationList();
        updateTitle();
      } catch (e) {
        setStreaming(false);
        reportError(e);
        return;
      }
    }

    el.input.value = '';
    autosize();
    const userBubble = addMessage({ role: 'user', content: text, status: 'complete' });
    const bubble = addMessage({ role: 'assistant', content: '', status: 'streaming' });
    const content = bubble.querySelector('.msg-content');
    scrollToBottom(true);

    const controller = new AbortController();
    state.abort = controller;
    let status = 'interrupted';
    let errorMessage = '';
    try {
      const body = { content: text };
      if (model) body.model = model;
      const res = await api.send(id, body, controller.signal);
      for await (const data of sseData(res.body)) {
        if (data === '[DONE]') continue;
        let ev;
        try { ev = JSON.parse(data); } catch (_) { continue; }
        if (ev.type === 'start') {
          if (ev.message_id !== undefined) bubble.dataset.id = String(ev.message_id);
          if (ev.citations) renderSources(bubble, ev.citations, id);
        } else if (ev.type === 'token') {
          if (ev.text) {
            content.textContent += ev.text;
            scrollToBottom(false);
          }
        } else if (ev.type === 'done') {
          status = 'complete';
          if (ev.finish_reason) bubble.dataset.finishReason = ev.finish_reason;
        } else if (ev.type === 'error') {
          status = 'error';
          errorMessage = (ev.error && ev.error.message) || 'The answer failed.';
        }
      }
      if (status === 'interrupted') errorMessage = 'The connection to the node closed before the answer finished.';
    } catch (e) {
      if (controller.signal.aborted || (e && e.name === 'AbortError')) {
        status = 'stopped';
      } else {
        status = 'error';
        errorMessage = e && e.message ? e.message : String(e);
        if (e && e.auth) errorMessage = '';
        // Nothing was generated and the request itself failed: give the text back.
        if (e instanceof ApiError && !content.textContent) {
          bubble.remove();
          userBubble.remove();
          if (!el.messagesInner.querySelector('.msg')) el.emptyState.hidden = false;
          if (!el.input.value) { el.input.value = text; autosize(); }
        }
      }
    } finally {
      if (state.abort === controller) state.abort = null;
      setStatus(bubble, status);
      setStreaming(false);
    }
    if (errorMessage) showError(errorMessage);
    try { await refreshConversations(); } catch (e) { reportError(e); }
  }

  el.composer.addEventListener('submit', (ev) => {
    ev.preventDefault();
    sendMessage();
  });

  el.input.addEventListener('keydown', (ev) => {
    if (ev.key === 'Enter' && !ev.shiftKey && !ev.isComposing) {
      ev.preventDefault();
      if (!state.streaming) sendMessage();
    }
  });

  function autosize() {
    el.input.style.height = 'auto';
    el.input.style.height = Math.min(el.input.scrollHeight, 220) + 'px';
  }
  el.input.addEventListener('input', autosize);

  el.stop.addEventListener('click', stopStreaming);
  el.newChat.addEventListener('click', () => { closeSidebar(); startNewChat(); });
  $('new-chat-top').addEventListener('click', startNewChat);
  el.errorClose.addEventListener('click', clearError);

  // ------------------------------------------------------------ memory switch

  function setMemoryToggle(on) {
    el.memoryToggle.checked = on !== false;
  }

  // For an open conversation the switch is stored on the node; a new chat sends it
  // when it is created.
  el.memoryToggle.addEventListener('change', () => {
    const id = state.currentId;
    if (!id) return;
    const on = el.memoryToggle.checked;
    clearError();
    el.memoryToggle.disabled = true;
    const p = api.patch(id, { memory: on }).then((conv) => {
      const listed = state.conversations.find((c) => c.id === id);
      if (listed && conv) listed.memory = conv.memory;
      if (id === state.currentId && conv) setMemoryToggle(conv.memory);
    }, (e) => {
      if (id === state.currentId) setMemoryToggle(!on);
      reportError(e);
    }).finally(() => {
      if (state.memoryPatch === p) state.memoryPatch = null;
      el.memoryToggle.disabled = false;
    });
    state.memoryPatch = p;
  });

  // ------------------------------------------------------------ citation view

  function formatBytes(n) {
    if (typeof n !== 'number' || !Number.isFinite(n)) return '';
    if (n < 1024) return n + ' bytes';
    if (n < 1024 * 1024) return (n / 1024).toFixed(1) + ' KiB';
    return (n / (1024 * 1024)).toFixed(1) + ' MiB';
  }

  const KIND_LABEL = {
    email: 'Mail', mbox: 'Mailbox', text: 'Text', markdown: 'Markdown', html: 'HTML', pdf: 'PDF',
  };

  function addMeta(term, value, opts) {
    if (value === undefined || value === null || value === '') return;
    const dt = document.createElement('dt');
    dt.textContent = term;
    const dd = document.createElement('dd');
    dd.textContent = String(value);
    if (opts && opts.testid) dd.dataset.testid = opts.testid;
    if (opts && opts.mono) dd.className = 'mono';
    el.citeMeta.append(dt, dd);
  }

  function resetCitationView() {
    el.citeMeta.textContent = '';
    el.citeChunks.textContent = '';
    el.citeStatus.textContent = '';
    el.citeStatus.hidden = true;
  }

  function setCitationStatus(text, kind) {
    el.citeStatus.textContent = text;
    el.citeStatus.dataset.kind = kind || 'info';
    el.citeStatus.hidden = !text;
  }

  // Highlights the Sources links that lead to the passage shown.
  function markActiveCitation() {
    const r = state.cite.key ? state.cite.key.split('/') : null;
    for (const a of el.messagesInner.querySelectorAll('.cite-link')) {
      const on = !!r && a.dataset.docId === r[0] && a.dataset.chunk === r[1];
      a.classList.toggle('active', on);
      if (on) a.setAttribute('aria-current', 'true'); else a.removeAttribute('aria-current');
    }
  }

  function renderDocument(doc, chunk) {
    resetCitationView();
    el.citeView.dataset.state = 'ready';
    el.citeTitle.textContent = doc.title || fileName(doc.path);
    addMeta('Path', doc.path, { testid: 'citation-path', mono: true });
    addMeta('Kind', KIND_LABEL[doc.kind] || doc.kind);
    addMeta('From', doc.sender, { testid: 'citation-sender' });
    if (typeof doc.date === 'number') addMeta('Date', new Date(doc.date * 1000).toLocaleString());
    addMeta('Size', formatBytes(doc.bytes));
    const chunks = Array.isArray(doc.chunks) ? doc.chunks : [];
    let cited = null;
    for (const c of chunks) {
      const li = document.createElement('li');
      li.className = 'cite-chunk';
      li.dataset.testid = 'citation-chunk';
      li.dataset.chunk = String(c.chunk);
      const label = document.createElement('span');
      label.className = 'cite-chunk-label';
      label.textContent = 'Passage ' + (Number(c.chunk) + 1);
      const text = document.createElement(c.chunk === chunk ? 'mark' : 'div');
      text.className = 'cite-chunk-text';
      text.textContent = c.text || '';
      if (c.chunk === chunk) {
        cited = li;
        li.classList.add('cited');
        li.dataset.cited = 'true';
        li.setAttribute('aria-current', 'true');
        label.textContent += ' · cited';
      }
      li.append(label, text);
      el.citeChunks.appendChild(li);
    }
    if (!chunks.length) setCitationStatus('This document has no stored text.', 'warn');
    else if (chunk !== null && !cited) {
      setCitationStatus('The cited passage is no longer in this document: it changed after the answer was written.', 'warn');
    }
    if (cited) {
      const tall = cited.offsetHeight > el.citeBody.clientHeight * 0.8;
      cited.scrollIntoView({ block: tall ? 'start' : 'center', inline: 'nearest' });
    }
  }

  async function showCitation(docId, chunk) {
    const key = docId + '/' + (chunk === null ? '' : chunk);
    const focus = state.cite.focus;
    state.cite.focus = false;
    if (state.cite.key === key && !el.citeView.hidden) return;
    const seq = ++state.cite.seq;
    state.cite.key = key;
    markActiveCitation();
    resetCitationView();
    el.citeView.dataset.state = 'loading';
    el.citeView.dataset.docId = String(docId);
    el.citeTitle.textContent = 'Loading…';
    setCitationStatus('Loading the document…');
    closeNetwork(false);
    el.citeView.hidden = false;
    el.app.classList.add('cite-open');
    if (focus) el.citeTitle.focus();
    // A forgotten source is not fetched: its id may since name another document.
    const forgotten = Array.from(document.querySelectorAll('a[data-testid="citation"][data-forgotten="true"]'))
      .some((a) => a.dataset.docId === String(docId) && a.dataset.chunk === String(chunk));
    try {
      if (forgotten) throw Object.assign(new Error('forgotten'), { status: 404 });
      const doc = await api.document(docId);
      if (seq !== state.cite.seq) return;
      renderDocument(doc, chunk);
    } catch (e) {
      if (seq !== state.cite.seq) return;
      resetCitationView();
      if (e.status === 404) {
        el.citeView.dataset.state = 'missing';
        el.citeTitle.textContent = 'Document not in memory';
        setCitationStatus('This document is no longer in your memory: it was forgotten or removed '
          + 'after the answer was written, so its text cannot be shown.', 'warn');
      } else {
        el.citeView.dataset.state = 'error';
        el.citeTitle.textContent = 'Source unavailable';
        setCitationStatus('Could not load the document: ' + (e && e.message ? e.message : e), 'error');
      }
    }
  }

  function closeCitation(restoreFocus) {
    state.cite.seq++;
    state.cite.key = null;
    const opener = state.cite.opener;
    state.cite.opener = null;
    markActiveCitation();
    if (el.citeView.hidden) return;
    el.citeView.hidden = true;
    el.app.classList.remove('cite-open');
    resetCitationView();
    delete el.citeView.dataset.state;
    if (restoreFocus) {
      if (opener && opener.isConnected) opener.focus();
      else el.input.focus();
    }
  }

  // Shows or hides the citation view to match the URL.
  function syncCitation() {
    const r = route();
    if (r.id && r.id === state.currentId && r.doc) showCitation(r.doc.id, r.doc.chunk);
    else closeCitation(false);
  }

  // Closing goes back to the conversation's own address (replaced: closing is no navigation).
  function closeCitationByUser() {
    if (state.currentId && route().doc) history.replaceState(null, '', '#' + encodeURIComponent(state.currentId));
    closeCitation(true);
  }

  el.citeClose.addEventListener('click', closeCitationByUser);

  // ------------------------------------------------------------- network view

  const NET_REFRESH_MS = 5000;
  let netTimer = null;

  function addNetMeta(term, value, testid) {
    const dt = document.createElement('dt');
    dt.textContent = term;
    const dd = document.createElement('dd');
    if (Array.isArray(value)) {
      if (!value.length) dd.textContent = 'none';
      for (const v of value) {
        const line = document.createElement('div');
        line.className = 'mono';
        line.textContent = v;
        dd.appendChild(line);
      }
    } else {
      dd.textContent = String(value);
    }
    if (testid) dd.dataset.testid = testid;
    el.netMeta.append(dt, dd);
  }

  function renderNetwork(status, peers) {
    el.netStatus.hidden = true;
    el.netMeta.textContent = '';
    const nat = { public: 'public (reachable)', private: 'private (behind NAT)', unknown: 'unknown yet' };
    addNetMeta('NAT', nat[status.nat] || status.nat, 'net-nat');
    addNetMeta('Connected', status.connected + (status.connected === 1 ? ' peer' : ' peers'), 'net-connected');
    addNetMeta('DHT', status.routing_table + ' peers in the routing table');
    addNetMeta('Listening', status.listen, 'net-listen');
    addNetMeta('External', status.external);
    addNetMeta('Relays', status.reservations.length ? status.reservations : 'no reservation');
    if (status.relayed_addrs.length) addNetMeta('Reachable via', status.relayed_addrs);
    if (status.relay_server) addNetMeta('Relay server', 'on');
    el.netDiagnosis.textContent = '';
    const problems = status.diagnosis || [];
    for (const d of problems) {
      const li = document.createElement('li');
      li.dataset.testid = 'net-problem';
      li.textContent = d;
      el.netDiagnosis.appendChild(li);
    }
    if (!problems.length) {
      const li = document.createElement('li');
      li.className = 'ok';
      li.textContent = 'No reachability problems found.';
      el.netDiagnosis.appendChild(li);
    }
    el.netPeers.textContent = '';
    const list = peers.peers || [];
    el.netNoPeers.hidden = list.length > 0;
    for (const p of list) {
      const li = document.createElement('li');
      li.dataset.testid = 'net-peer';
      li.dataset.peerId = p.peer_id;
      const head = document.createElement('div');
      head.className = 'net-peer-head';
      const name = document.createElement('span');
      name.className = 'net-peer-name';
      name.textContent = p.name || p.peer_id.slice(0, 12) + '…' + p.peer_id.slice(-6);
      name.title = p.peer_id;
      const path = document.createElement('span');
      path.className = 'net-peer-path' + (p.relayed ? ' relayed' : '');
      path.textContent = p.relayed ? 'relayed' : 'direct';
      const rtt = document.createElement('span');
      rtt.textContent = typeof p.rtt_ms === 'number' ? p.rtt_ms.toFixed(1) + ' ms' : '';
      head.append(name, path, rtt);
      const addr = document.createElement('div');
      addr.className = 'net-peer-addr';
      addr.textContent = (p.addresses || []).join(' ');
      li.append(head, addr);
      el.netPeers.appendChild(li);
    }
    el.netView.dataset.state = 'ready';
  }

  async function refreshNetwork() {
    try {
      const [status, peers] = await Promise.all([api.netStatus(), api.netPeers()]);
      if (!el.netView.hidden) renderNetwork(status, peers);
    } catch (e) {
      if (el.netView.hidden) return;
      el.netView.dataset.state = 'error';
      el.netMeta.textContent = '';
      el.netDiagnosis.textContent = '';
      el.netPeers.textContent = '';
      el.netNoPeers.hidden = true;
      el.netStatus.textContent = e && e.message ? e.message : String(e);
      el.netStatus.hidden = false;
    }
  }

  // ---------------------------------------------------------- privacy

  const RULE_WORDS = { never: 'stay on this node', scrubbed: 'are scrubbed', 'as-is': 'go as typed' };

  function showPrivacyStatus(text) {
    el.privacyStatus.textContent = text;
    el.privacyStatus.hidden = !text;
  }

  function renderEgress(records) {
    el.egressList.textContent = '';
    el.egressEmpty.hidden = records.length > 0;
    for (const r of records.slice().reverse()) {
      const li = document.createElement('li');
      li.dataset.testid = 'egress-record';
      const head = document.createElement('div');
      head.className = 'net-peer-head';
      const dest = document.createElement('span');
      dest.className = 'net-peer-name';
      dest.textContent = r.destination;
      const rule = document.createElement('span');
      rule.className = 'net-peer-path';
      rule.dataset.testid = 'egress-rule';
      rule.textContent = r.rule || 'no text';
      const meta = document.createElement('span');
      meta.textContent = r.purpose + ' · ' + r.bytes + ' bytes · ' + new Date(r.at * 1000).toLocaleString();
      head.append(dest, rule, meta);
      li.appendChild(head);
      if (r.content) {
        const text = document.createElement('div');
        text.className = 'egress-text';
        text.dataset.testid = 'egress-text';
        text.textContent = r.content;
        li.appendChild(text);
      }
      el.egressList.appendChild(li);
    }
  }

  async function refreshPrivacy() {
    try {
      const [policy, egress] = await Promise.all([api.privacy(), api.egress()]);
      if (document.activeElement !== el.privacyCircle) el.privacyCircle.value = policy.circle;
      if (document.activeElement !== el.privacyMarket) el.privacyMarket.value = policy.market;
      renderEgress(egress.records || []);
    } catch (e) {
      showPrivacyStatus(e && e.message ? e.message : String(e));
    }
  }

  async function savePrivacy(which, select) {
    const body = {};
    body[which] = select.value;
    select.disabled = true;
    try {
      const policy = await api.setPrivacy(body);
      select.value = policy[which];
      showPrivacyStatus('Saved: requests to ' + (which === 'circle' ? 'circle peers' : 'market sellers') +
        ' ' + RULE_WORDS[policy[which]] + '.');
    } catch (e) {
      showPrivacyStatus((e && e.message ? e.message : String(e)));
      refreshPrivacy();
    } finally {
      select.disabled = false;
    }
  }

  el.privacyCircle.addEventListener('change', () => savePrivacy('circle', el.privacyCircle));
  el.privacyMarket.addEventListener('change', () => savePrivacy('market', el.privacyMarket));

  function openNetwork() {
    if (!el.netView.hidden) return;
    closeCitationByUser();
    el.netView.dataset.state = 'loading';
    el.netView.hidden = false;
    el.app.classList.add('cite-open');
    el.netTitle.focus();
    showPrivacyStatus('');
    refreshNetwork();
    refreshPrivacy();
    netTimer = setInterval(() => { refreshNetwork(); refreshPrivacy(); }, NET_REFRESH_MS);
  }

  function closeNetwork(restoreFocus) {
    if (el.netView.hidden) return;
    clearInterval(netTimer);
    netTimer = null;
    el.netView.hidden = true;
    delete el.netView.dataset.state;
    if (el.citeView.hidden) el.app.classList.remove('cite-open');
    if (restoreFocus) el.netOpen.focus();
  }

  el.netOpen.addEventListener('click', () => {
    if (el.netView.hidden) openNetwork(); else closeNetwork(true);
  });
  el.netClose.addEventListener('click', () => closeNetwork(true));

  // ---------------------------------------------------------------- sidebar

  function openSidebar() {
    el.sidebar.classList.add('open');
    el.scrim.hidden = false;
    el.menuBtn.setAttribute('aria-expanded', 'true');
  }

  function closeSidebar() {
    el.sidebar.classList.remove('open');
    el.scrim.hidden = true;
    el.menuBtn.setAttribute('aria-expanded', 'false');
  }

  el.menuBtn.addEventListener('click', () => {
    if (el.sidebar.classList.contains('open')) closeSidebar(); else openSidebar();
  });
  el.scrim.addEventListener('click', closeSidebar);
  document.addEventListener('keydown', (ev) => {
    if (ev.key !== 'Escape' || !el.tokenOverlay.hidden) return;
    if (el.sidebar.classList.contains('open')) closeSidebar();
    else if (!el.netView.hidden) closeNetwork(true);
    else if (!el.citeView.hidden) closeCitationByUser();
  });

  // ------------------------------------------------------------------ boot

  async function boot() {
    clearError();
    el.forgetToken.hidden = !state.token;
    const results = await Promise.allSettled([
      loadNode().then(() => selectModel(state.defaultModel)),
      refreshConversations(),
    ]);
    // Models after /api/node so default_model is known for preselection.
    const models = await Promise.allSettled([loadModels()]);
    const failed = results.concat(models).find((r) => r.status === 'rejected');
    if (failed) reportError(failed.reason);

    const id = idFromHash();
    if (id) await openConversation(id);
    else { state.currentId = null; closeCitation(false); clearMessages(); renderConversationList(); updateTitle(); }
    el.input.focus();
  }

  setStreaming(false);
  boot();
})();
