// HotPlex web chat and dashboard. Plain JavaScript, no build step, nothing from outside.
// It talks to the daemon like any other client: the WebSocket protocol (/ws/v1/agent),
// the admin API (/admin/v1/...) and the setup report (/api/v1/setup). See docs/webchat.md.
//
// Agent output is untrusted: every text reaches the page either through textContent, or
// through renderMarkdown(), which escapes the whole text FIRST and only then adds its own
// few tags. Nothing else ever assigns innerHTML.
"use strict";

(() => {
  // -- storage -------------------------------------------------------------------------

  const STORE = {
    apiKey: "hotplex.apiKey",
    adminToken: "hotplex.adminToken",
    sessions: "hotplex.sessions",
    current: "hotplex.current",
  };
  const MAX_PROMPTS = 200; // remembered prompts per session
  const MAX_SESSIONS = 50;

  function load(key, fallback) {
    try {
      const value = localStorage.getItem(key);
      return value === null ? fallback : JSON.parse(value);
    } catch {
      return fallback;
    }
  }

  function save(key, value) {
    try {
      localStorage.setItem(key, JSON.stringify(value));
    } catch {
      // storage full or disabled: the page goes on without remembering
    }
  }

  // Stored events lack the user's prompt, so the page keeps it, by the turn's request_id.
  const promptsKey = (sessionId) => "hotplex.prompts." + sessionId;

  function rememberPrompt(sessionId, requestId, text) {
    const prompts = load(promptsKey(sessionId), {});
    prompts[requestId] = text;
    const ids = Object.keys(prompts);
    for (const old of ids.slice(0, Math.max(0, ids.length - MAX_PROMPTS))) delete prompts[old];
    save(promptsKey(sessionId), prompts);
  }

  // -- escaping and a small markdown ----------------------------------------------------

  const ESCAPES = { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" };

  function escapeHtml(text) {
    return String(text).replace(/[&<>"']/g, (c) => ESCAPES[c]);
  }

  // `escaped` is already escaped: the patterns below only wrap parts of it in our own tags.
  function inline(escaped) {
    return escaped
      .split(/(`[^`\n]+`)/)
      .map((part, index) => {
        if (index % 2 === 1) return "<code>" + part.slice(1, -1) + "</code>";
        return part
          .replace(/\*\*(?=\S)([^*]*?\S)\*\*/g, "<strong>$1</strong>")
          .replace(/(^|[\s(])\*(?=\S)([^*]*?\S)\*(?=$|[\s.,;:!?)])/g, "$1<em>$2</em>")
          .replace(
            /\[([^\]]+)\]\((https?:\/\/(?:[^\s)&]|&amp;)+)\)/g, // no quotes or brackets in it
            '<a href="$2" target="_blank" rel="noopener noreferrer">$1</a>',
          );
      })
      .join("");
  }

  function codeBlock(lang, lines) {
    const attr = lang ? ` data-lang="${escapeHtml(lang)}"` : "";
    return `<pre class="code"${attr}><code>${lines.map(escapeHtml).join("\n")}</code></pre>`;
  }

  // Paragraphs, line breaks, fenced code, `code`, **bold**, *italic*, http(s) links,
  // headings, lists and quotes. Returns HTML in which every character of `source` is escaped.
  function renderMarkdown(source) {
    const out = [];
    let para = [];
    let list = null;
    let code = null;
    const flushPara = () => {
      if (para.length) out.push("<p>" + para.map(inline).join("<br>") + "</p>");
      para = [];
    };
    const flushList = () => {
      if (list) {
        const items = list.items.map((item) => "<li>" + inline(item) + "</li>").join("");
        out.push(`<${list.tag}>${items}</${list.tag}>`);
      }
      list = null;
    };
    const addItem = (tag, item) => {
      flushPara();
      if (!list || list.tag !== tag) {
        flushList();
        list = { tag, items: [] };
      }
      list.items.push(item);
    };
    for (const raw of String(source).replace(/\r\n?/g, "\n").split("\n")) {
      if (code) {
        if (/^\s*```\s*$/.test(raw)) {
          out.push(codeBlock(code.lang, code.lines));
          code = null;
        } else {
          code.lines.push(raw);
        }
        continue;
      }
      const fence = raw.match(/^\s*```\s*([\w+.#-]*)/);
      if (fence) {
        flushPara();
        flushList();
        code = { lang: fence[1], lines: [] };
        continue;
      }
      const line = escapeHtml(raw);
      let m;
      if (!line.trim()) {
        flushPara();
        flushList();
      } else if ((m = line.match(/^(#{1,6})\s+(.*)$/))) {
        flushPara();
        flushList();
        const level = Math.min(6, m[1].length + 2);
        out.push(`<h${level}>${inline(m[2])}</h${level}>`);
      } else if ((m = line.match(/^\s*[-*+]\s+(.*)$/))) {
        addItem("ul", m[1]);
      } else if ((m = line.match(/^\s*\d+[.)]\s+(.*)$/))) {
        addItem("ol", m[1]);
      } else if ((m = line.match(/^&gt;\s?(.*)$/))) {
        flushPara();
        flushList();
        out.push("<blockquote>" + inline(m[1]) + "</blockquote>");
      } else {
        flushList();
        para.push(line);
      }
    }
    flushPara();
    flushList();
    if (code) out.push(codeBlock(code.lang, code.lines)); // still streaming in
    return out.join("");
  }

  // -- small DOM helpers ------------------------------------------------------------------

  const $ = (id) => document.getElementById(id);

  function el(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function randomId(prefix) {
    const bytes = new Uint8Array(6);
    crypto.getRandomValues(bytes);
    return prefix + Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
  }

  function short(value, limit = 120) {
    const text = typeof value === "string" ? value : JSON.stringify(value);
    return text.length > limit ? text.slice(0, limit - 1) + "…" : text;
  }

  function toolSummary(input) {
    if (!input || typeof input !== "object") return short(input ?? "");
    for (const key of ["command", "file_path", "filePath", "path", "pattern", "url", "query"]) {
      if (typeof input[key] === "string") return short(input[key]);
    }
    return short(input);
  }

  function pretty(value) {
    return typeof value === "string" ? value : JSON.stringify(value, null, 2);
  }

  const tokens = (n) => (typeof n === "number" ? n.toLocaleString("en-US") : "–");
  const dollars = (n) => (typeof n === "number" ? "$" + n.toFixed(4) : "–");

  // -- state ------------------------------------------------------------------------------

  const state = {
    ws: null,
    retries: 0,
    retryTimer: null,
    everOpened: false,
    apiKey: load(STORE.apiKey, ""),
    adminToken: load(STORE.adminToken, ""),
    sessions: load(STORE.sessions, []), // [{id, title, started}], newest first
    current: load(STORE.current, null),
    lastSeq: {}, // session id -> highest seq shown (events are deduplicated by it)
    subscribed: new Set(), // sessions subscribed on the current socket
    turns: new Map(), // turn id -> the turn's view
    pending: new Map(), // request id -> a sent prompt whose turn has not begun
    mine: new Set(), // request ids of the prompts this page sent
    promptPerms: new Map(), // permission id -> the card of a prompt the WAF asks about
    refused: new Map(), // request id -> the article of a prompt denied at its approval
    setup: null,
  };

  const known = (id) => state.sessions.some((s) => s.id === id);

  // -- the connection ---------------------------------------------------------------------

  function setConn(kind, text) {
    const conn = $("conn");
    conn.dataset.state = kind;
    conn.textContent = text;
    const open = kind === "open";
    $("send").disabled = !open;
    for (const button of document.querySelectorAll(".perm .buttons button")) {
      button.disabled = !open;
    }
    updateStop();
  }

  function send(frame) {
    if (!state.ws || state.ws.readyState !== WebSocket.OPEN) return false;
    state.ws.send(JSON.stringify(frame));
    return true;
  }

  function connect() {
    clearTimeout(state.retryTimer);
    if (state.ws) {
      state.ws.onclose = null;
      state.ws.close();
    }
    const scheme = location.protocol === "https:" ? "wss://" : "ws://";
    const protocols = ["hotplex.v1"];
    if (state.apiKey) protocols.push("hotplex-key." + state.apiKey);
    setConn("connecting", "connecting…");
    let ws;
    try {
      ws = new WebSocket(scheme + location.host + "/ws/v1/agent", protocols);
    } catch {
      setConn("closed", "bad API key");
      showSettings("The API key has characters a browser cannot send (use letters, digits, - . _ ~).");
      return;
    }
    state.ws = ws;
    state.subscribed.clear();
    ws.onopen = () => {
      state.retries = 0;
      state.everOpened = true;
      setConn("open", "connected");
      if (state.current && known(state.current)) subscribe(state.current);
      loadSetup();
    };
    ws.onmessage = (message) => {
      let frame;
      try {
        frame = JSON.parse(message.data);
      } catch {
        return;
      }
      onFrame(frame);
    };
    ws.onclose = (event) => {
      if (state.ws !== ws) return;
      state.ws = null;
      state.subscribed.clear();
      reconnectLater(event);
    };
  }

  function reconnectLater(event) {
    const delay = Math.min(15000, 500 * 2 ** state.retries) * (0.8 + Math.random() * 0.4);
    state.retries += 1;
    const seconds = Math.max(1, Math.round(delay / 1000));
    let why = "";
    if (!state.everOpened && state.setup && state.setup.key_required) {
      why = state.apiKey ? " (check the API key)" : " (an API key is needed)";
      if (!state.apiKey) showSettings("This daemon needs an API key (server.api_keys).");
    } else if (event.code === 1008) {
      why = " (this page fell behind)";
    }
    setConn("closed", `offline${why}, retrying in ${seconds} s`);
    state.retryTimer = setTimeout(connect, delay);
  }

  function subscribe(sessionId) {
    const since = state.lastSeq[sessionId] || 0;
    if (send({ type: "subscribe", session_id: sessionId, since_seq: since, request_id: "sub:" + sessionId })) {
      state.subscribed.add(sessionId);
    }
  }

  // -- frames in ---------------------------------------------------------------------------

  function onFrame(frame) {
    if (frame.type === "pong") return;
    if (frame.type === "error" && typeof frame.seq !== "number") {
      onProtocolError(frame);
      return;
    }
    const sessionId = frame.session_id;
    if (typeof sessionId !== "string" || typeof frame.seq !== "number") return;
    if (frame.seq <= (state.lastSeq[sessionId] || 0)) return; // seen already
    state.lastSeq[sessionId] = frame.seq;
    // Subscribe to see turns started elsewhere too, but not in the middle of a turn this
    // socket started: its events come already, and a replay would have to catch up.
    const ownTurn = frame.type !== "done" && state.mine.has(frame.request_id);
    if (!state.subscribed.has(sessionId) && !ownTurn) subscribe(sessionId);
    if (sessionId !== state.current) {
      markActivity(sessionId);
      return;
    }
    $("empty").hidden = true;
    render(frame);
    scrollDown();
  }

  function onProtocolError(frame) {
    const data = frame.data || {};
    const requestId = frame.request_id || "";
    if (requestId.startsWith("sub:")) {
      const sessionId = requestId.slice(4);
      state.subscribed.delete(sessionId);
      if (data.code === "subscription_lost") subscribe(sessionId);
      else if (data.code !== "unknown_session" && sessionId === state.current) notice(data);
      return;
    }
    const article = state.pending.get(requestId) || state.refused.get(requestId);
    if (article) {
      state.pending.delete(requestId);
      state.refused.delete(requestId);
      article.classList.remove("pending");
      article.dataset.status = "refused";
      article.append(el("div", "error", `${data.code}: ${data.message}`));
      updateStop();
      return;
    }
    notice(data);
  }

  function notice(data) {
    $("log").append(el("div", "error", `${data.code || "error"}: ${data.message || ""}`));
    scrollDown();
  }

  function scrollDown() {
    const log = $("log");
    log.scrollTop = log.scrollHeight;
  }

  // -- one turn's view ------------------------------------------------------------------------

  function userBubble(text) {
    if (typeof text === "string") return el("div", "user", text);
    return el("div", "user unknown", "(prompt sent from another client)");
  }

  function turnOf(event) {
    let turn = state.turns.get(event.turn_id);
    if (turn) return turn;
    let article = state.pending.get(event.request_id);
    if (article) {
      state.pending.delete(event.request_id);
    } else {
      article = promptArticle(event);
    }
    article.dataset.turn = event.turn_id;
    article.classList.remove("pending");
    const body = el("div", "assistant");
    const foot = el("div", "turn-foot");
    article.append(body, foot);
    turn = { article, body, foot, live: null, tools: new Map(), perms: new Map(), usage: null, done: null };
    state.turns.set(event.turn_id, turn);
    return turn;
  }

  // An article for a prompt this page did not send (or sent before a reload).
  function promptArticle(event) {
    const article = el("article", "turn");
    const prompts = load(promptsKey(event.session_id), {});
    article.append(userBubble(event.request_id ? prompts[event.request_id] : undefined));
    $("log").append(article);
    return article;
  }

  // A prompt the WAF asks about: its permission_request and permission_decision come before
  // any turn (empty turn_id). The card goes into the prompt's article, where the turn
  // follows when the prompt is allowed; a denied prompt's article is marked refused.
  const promptHolder = (article) => ({ body: article, perms: state.promptPerms });

  function promptApproval(event) {
    const data = event.data || {};
    const requestId = event.request_id || "";
    if (event.type === "permission_request") {
      let article = state.pending.get(requestId);
      if (!article) {
        article = promptArticle(event);
        article.classList.add("pending");
        if (requestId) state.pending.set(requestId, article);
      }
      permissionCard(promptHolder(article), data);
      return;
    }
    const card = state.promptPerms.get(data.permission_id);
    if (!card) return;
    decided(promptHolder(null), data);
    const article = card.closest("article");
    if (data.decision === "deny" && article && state.pending.get(requestId) === article) {
      state.pending.delete(requestId);
      state.refused.set(requestId, article);
      article.classList.remove("pending");
      article.dataset.status = "refused";
    }
  }

  function textBlock(turn) {
    const block = el("div", "text");
    block.dataset.raw = "";
    turn.body.append(block);
    return block;
  }

  function paint(block, text) {
    block.dataset.raw = text;
    block.innerHTML = renderMarkdown(text); // escaped first, see renderMarkdown
  }

  function toolView(turn, id, name, input) {
    let view = turn.tools.get(id);
    if (view) return view;
    const details = el("details", "tool");
    details.dataset.tool = name || "";
    details.dataset.state = "running";
    const summary = el("summary");
    summary.append(el("span", "mark", "⚙ "), el("b", "", name || "tool"), " ", el("span", "mono", toolSummary(input)));
    const inner = el("div");
    inner.append(el("pre", "input", pretty(input ?? {})));
    details.append(summary, inner);
    turn.body.append(details);
    view = { details, summary, inner };
    turn.tools.set(id, view);
    return view;
  }

  function permissionCard(turn, data) {
    const card = el("div", "perm");
    card.dataset.permission = data.permission_id;
    card.dataset.kind = data.kind || "tool";
    if (data.kind === "prompt") {
      card.append(el("div", "question", "Send this prompt to the agent?"));
      card.append(el("pre", "", (data.input || {}).text ?? ""));
    } else {
      card.append(el("div", "question", `Allow ${data.tool}?`));
      card.append(el("pre", "", pretty(data.input)));
    }
    if (data.reason) card.append(el("div", "meta", data.reason));
    const buttons = el("div", "buttons");
    const choices = [["allow", "once", "Allow"]];
    if ((data.scopes || []).includes("session")) choices.push(["allow", "session", "Allow for this session"]);
    choices.push(["deny", "once", "Deny"]);
    for (const [decision, scope, label] of choices) {
      const button = el("button", decision === "deny" ? "danger" : "", label);
      button.type = "button";
      button.dataset.decision = decision;
      button.dataset.scope = scope;
      button.disabled = !state.ws || state.ws.readyState !== WebSocket.OPEN;
      button.addEventListener("click", () => {
        const frame = { type: "permission_response", permission_id: data.permission_id, decision, scope };
        if (send(frame)) for (const b of buttons.querySelectorAll("button")) b.disabled = true;
      });
      buttons.append(button);
    }
    card.append(buttons);
    turn.body.append(card);
    turn.perms.set(data.permission_id, card);
    return card;
  }

  function decided(turn, data) {
    const card = turn.perms.get(data.permission_id);
    if (!card) return;
    card.dataset.decision = data.decision;
    const word = data.decision === "allow" ? "✓ allowed" : "✗ denied";
    const scope = data.scope === "session" ? " for this session" : "";
    const outcome = el("div", "outcome", `${word}${scope} by ${data.by}`);
    if (data.reason) outcome.append(el("span", "muted", ` (${data.reason})`));
    card.querySelector(".buttons")?.replaceWith(outcome);
  }

  function footer(turn) {
    const parts = [];
    if (turn.done) parts.push(`${(turn.done.duration_ms / 1000).toFixed(1)} s`);
    if (turn.usage) {
      const u = turn.usage;
      parts.push(`${tokens(u.input_tokens)} in / ${tokens(u.output_tokens)} out tokens`, dollars(u.cost_usd));
    }
    const nodes = turn.done ? [el("span", "status-" + turn.done.status, turn.done.status)] : [];
    if (parts.length) nodes.push((nodes.length ? " · " : "") + parts.join(" · "));
    turn.foot.replaceChildren(...nodes);
  }

  // A message delivered into this conversation from outside any turn (a cron job, a relay,
  // a webhook, through the delivery router): who sent it, and its text as Markdown.
  function delivered(event, data) {
    // a chat command's answer carries the request_id of the prompt that asked for it
    const asked = event.request_id && state.pending.get(event.request_id);
    if (asked) {
      state.pending.delete(event.request_id);
      asked.classList.remove("pending");
    }
    const article = el("article", "delivered");
    article.dataset.seq = String(event.seq);
    const body = el("div", "text");
    paint(body, String(data.text ?? ""));
    article.append(el("div", "meta from", `from ${data.from ?? "?"}`), body);
    $("log").append(article);
    updateStop();
  }

  function render(event) {
    const data = event.data || {};
    if (!event.turn_id && event.type === "message") {
      delivered(event, data);
      return;
    }
    if (!event.turn_id && (event.type === "permission_request" || event.type === "permission_decision")) {
      promptApproval(event);
      updateStop();
      return;
    }
    if (!event.turn_id) {
      // outside any turn: the agent process stopped (idle, shutdown) or was reset
      $("log").append(el("div", "meta session-note", `agent session ${data.state || event.type}`));
      return;
    }
    const turn = turnOf(event);
    switch (event.type) {
      case "session":
        if (data.state !== "started") turn.body.append(el("div", "meta", `session ${data.state}`));
        break;
      case "thinking": {
        const details = el("details", "thinking");
        details.append(el("summary", "", "thinking"), el("div", "", data.text));
        turn.body.append(details);
        break;
      }
      case "text_delta":
        if (!turn.live) {
          turn.live = textBlock(turn);
          turn.live.classList.add("streaming");
        }
        paint(turn.live, turn.live.dataset.raw + data.text);
        break;
      case "text": {
        const block = turn.live || textBlock(turn);
        block.classList.remove("streaming");
        paint(block, data.text);
        turn.live = null;
        break;
      }
      case "tool_use":
        turn.live?.classList.remove("streaming");
        turn.live = null;
        toolView(turn, data.tool_use_id, data.name, data.input);
        break;
      case "tool_result": {
        const view = toolView(turn, data.tool_use_id, "", undefined);
        view.details.dataset.state = data.is_error ? "error" : "ok";
        view.summary.querySelector(".mark").textContent = data.is_error ? "✗ " : "✓ ";
        view.inner.append(el("pre", "output", pretty(data.output)));
        break;
      }
      case "permission_request":
        permissionCard(turn, data);
        break;
      case "permission_decision":
        decided(turn, data);
        break;
      case "usage":
        turn.usage = data;
        footer(turn);
        break;
      case "status": // "requesting", retries, compaction: shown while the turn runs
        if (!turn.done) turn.foot.replaceChildren(el("span", "status-live", data.text));
        break;
      case "error":
        turn.body.append(el("div", "error", `${data.code}: ${data.message}`));
        break;
      case "done":
        turn.live?.classList.remove("streaming");
        turn.live = null;
        turn.done = data;
        turn.article.dataset.status = data.status;
        for (const card of turn.perms.values()) card.querySelector(".buttons")?.remove();
        footer(turn);
        break;
      default:
        break;
    }
    updateStop();
  }

  function updateStop() {
    let running = state.pending.size > 0;
    for (const turn of state.turns.values()) running ||= !turn.done;
    const open = state.ws && state.ws.readyState === WebSocket.OPEN;
    $("stop").disabled = !(running && open);
  }

  // -- sessions ---------------------------------------------------------------------------

  function renderSessions() {
    const list = $("session-list");
    list.replaceChildren();
    for (const session of state.sessions) {
      const item = el("li");
      const button = el("button", "", session.title || session.id);
      button.type = "button";
      button.title = session.id;
      button.dataset.session = session.id;
      button.setAttribute("aria-current", String(session.id === state.current));
      button.addEventListener("click", () => selectSession(session.id));
      item.append(button);
      list.append(item);
    }
  }

  function markActivity(sessionId) {
    document.querySelector(`#session-list button[data-session="${CSS.escape(sessionId)}"]`)?.classList.add("activity");
  }

  function clearConversation() {
    state.turns.clear();
    state.pending.clear();
    state.promptPerms.clear();
    state.refused.clear();
    const log = $("log");
    const empty = $("empty");
    log.replaceChildren(empty);
    empty.hidden = false;
    updateStop();
  }

  function selectSession(sessionId) {
    state.current = sessionId;
    save(STORE.current, sessionId);
    clearConversation();
    renderSessions();
    if (sessionId && known(sessionId)) {
      state.lastSeq[sessionId] = 0; // replay the whole stored conversation
      subscribe(sessionId);
    }
  }

  function newSession() {
    selectSession(null);
    $("prompt").focus();
  }

  function ensureSession(prompt) {
    if (state.current && known(state.current)) return state.current;
    const id = state.current || randomId("web-");
    state.sessions.unshift({ id, title: short(prompt.replace(/\s+/g, " "), 48), started: Date.now() });
    state.sessions = state.sessions.slice(0, MAX_SESSIONS);
    save(STORE.sessions, state.sessions);
    state.current = id;
    save(STORE.current, id);
    renderSessions();
    return id;
  }

  function sendPrompt() {
    const box = $("prompt");
    const text = box.value;
    if (!text.trim()) return;
    const sessionId = ensureSession(text);
    const requestId = randomId("r-");
    rememberPrompt(sessionId, requestId, text);
    if (!send({ type: "execute", session_id: sessionId, prompt: text, request_id: requestId })) return;
    state.mine.add(requestId);
    box.value = "";
    const article = el("article", "turn pending");
    article.append(userBubble(text));
    $("empty").hidden = true;
    $("log").append(article);
    state.pending.set(requestId, article);
    updateStop();
    scrollDown();
  }

  function interrupt() {
    if (state.current) send({ type: "interrupt", session_id: state.current });
  }

  // -- setup banner and settings ------------------------------------------------------------

  async function loadSetup() {
    let report;
    try {
      const response = await fetch("/api/v1/setup", { cache: "no-store" });
      if (!response.ok) return;
      report = await response.json();
    } catch {
      return;
    }
    state.setup = report;
    const banner = $("setup-banner");
    const failed = (report.checks || []).filter((check) => !check.ok);
    if (!failed.length) {
      banner.hidden = true;
      banner.replaceChildren();
    } else {
      const list = el("ul");
      for (const check of failed) {
        const item = el("li");
        item.append(el("b", "", check.name + ": "), check.detail || "failed");
        if (check.hint) item.append(el("br"), "Fix: ", el("code", "", check.hint));
        list.append(item);
      }
      banner.replaceChildren(el("strong", "", `The ${report.provider} agent cannot start yet.`), list);
      banner.hidden = false;
    }
    if (report.key_required && !state.apiKey) showSettings("This daemon needs an API key (server.api_keys).");
  }

  function showSettings(hint) {
    if ($("settings").hidden) {
      // fill in what is stored, but never overwrite what the person is typing
      $("api-key").value = state.apiKey;
      $("admin-token").value = state.adminToken;
    }
    const needsKey = state.setup ? state.setup.key_required : true;
    $("api-key").placeholder = needsKey ? "server.api_keys[].key" : "not needed on this machine";
    $("admin-token").placeholder =
      state.setup && !state.setup.admin_token_required ? "not needed on this machine" : "server.admin_token";
    $("settings-hint").textContent =
      hint || "Kept in this browser only (localStorage). The key goes to the daemon as a WebSocket subprotocol.";
    $("settings").hidden = false;
  }

  function saveSettings(event) {
    event.preventDefault();
    const key = $("api-key").value.trim();
    if (key && !/^[A-Za-z0-9!#$%&'*+.^_`|~-]+$/.test(key)) {
      $("settings-hint").textContent = "A key sent from a browser may hold only letters, digits and - . _ ~ (and a few more).";
      return;
    }
    const changedKey = key !== state.apiKey;
    state.apiKey = key;
    state.adminToken = $("admin-token").value.trim();
    save(STORE.apiKey, state.apiKey);
    save(STORE.adminToken, state.adminToken);
    $("settings").hidden = true;
    if (changedKey || !state.ws) {
      state.retries = 0;
      state.everOpened = false;
      connect();
    }
    if (!$("dashboard-view").hidden) refreshDashboard();
  }

  // -- dashboard ------------------------------------------------------------------------------

  const AUDIT_TYPES = "waf.verdict,approval.requested,approval.decided,session.killed";
  let dashboardTimer = null;

  async function admin(path, options = {}) {
    const headers = state.adminToken ? { Authorization: "Bearer " + state.adminToken } : {};
    const response = await fetch(path, { ...options, headers, cache: "no-store" });
    if (response.status === 401) throw new Error("the admin API refused: enter the admin token (Keys)");
    const body = await response.json().catch(() => ({}));
    if (!response.ok) throw new Error((body.error && body.error.message) || `HTTP ${response.status}`);
    return body;
  }

  function cell(content, className) {
    const td = el("td", className);
    if (content instanceof Node) td.append(content);
    else td.textContent = content ?? "";
    return td;
  }

  function emptyRow(table, text) {
    const row = el("tr");
    const td = cell(text, "empty-row");
    td.colSpan = table.tHead.rows[0].cells.length;
    row.append(td);
    return row;
  }

  function idle(seconds) {
    if (typeof seconds !== "number") return "–";
    if (seconds < 60) return `${Math.round(seconds)}s`;
    if (seconds < 3600) return `${Math.floor(seconds / 60)}m${String(Math.round(seconds % 60)).padStart(2, "0")}s`;
    return `${Math.floor(seconds / 3600)}h${String(Math.floor((seconds % 3600) / 60)).padStart(2, "0")}m`;
  }

  function renderSessionRows(sessions) {
    const table = $("sessions-table");
    const body = table.tBodies[0];
    body.replaceChildren();
    if (!sessions.length) body.append(emptyRow(table, "No sessions yet."));
    for (const s of sessions) {
      const row = el("tr");
      row.dataset.session = s.session_id;
      row.dataset.address = s.address || s.key || "";
      const kill = el("button", "danger", "Kill");
      kill.type = "button";
      kill.title = "Interrupt the turn and kill the agent's processes; the next message resumes";
      kill.disabled = s.state === "stopped";
      kill.addEventListener("click", () => killSession(s.session_id, kill));
      row.append(
        cell(el("span", "mono", s.session_id.slice(0, 8)), ""),
        cell(s.address || s.key, "mono"),
        cell(el("span", "state-" + s.state, s.state), "state"),
        cell(String(s.turns ?? 0)),
        cell(`${tokens(s.input_tokens)} / ${tokens(s.output_tokens)}`),
        cell(dollars(s.cost_usd)),
        cell(idle(s.idle_seconds)),
        cell(kill),
      );
      row.cells[0].title = s.session_id;
      body.append(row);
    }
  }

  function auditDetail(entry) {
    const d = entry.data || {};
    switch (entry.type) {
      case "waf.verdict":
        return `${d.action} ${d.rule_id || ""} ${d.description || ""} (${d.where || ""})`.trim();
      case "approval.requested":
        return `${d.tool}: ${toolSummary(d.input)}`;
      case "approval.decided":
        return `${d.decision} ${d.tool} (${d.scope})${d.reason ? ": " + d.reason : ""}`;
      case "session.killed":
        return d.key || "";
      default:
        return short(d, 200);
    }
  }

  function renderAuditRows(entries) {
    const table = $("audit-table");
    const body = table.tBodies[0];
    body.replaceChildren();
    if (!entries.length) body.append(emptyRow(table, "Nothing yet."));
    for (const entry of entries) {
      const row = el("tr");
      row.dataset.type = entry.type;
      row.append(
        cell(new Date(entry.ts * 1000).toLocaleTimeString()),
        cell(entry.type, "mono"),
        cell(entry.actor || ""),
        cell(entry.session_id ? entry.session_id.slice(0, 8) : "", "mono"),
        cell(auditDetail(entry), "detail"),
      );
      body.append(row);
    }
  }

  function renderStats(stats) {
    const items = [
      ["sessions", stats.sessions],
      ["processes", `${stats.live_processes} / ${stats.max_sessions}`],
      ["pending approvals", stats.pending_approvals],
      ["turns", stats.turns],
      ["tokens in / out", `${tokens(stats.input_tokens)} / ${tokens(stats.output_tokens)}`],
      ["cost", dollars(stats.cost_usd)],
      ["uptime", idle(stats.uptime_seconds)],
    ];
    $("stats").replaceChildren(
      ...items.map(([label, value]) => {
        const box = el("div", "stat");
        box.append(el("b", "", String(value)), el("span", "muted", label));
        return box;
      }),
    );
  }

  // the cron plugin's jobs (docs/cron.md): the panel shows only where cron runs
  async function refreshCron() {
    const headers = state.adminToken ? { Authorization: "Bearer " + state.adminToken } : {};
    const response = await fetch("/admin/v1/cron/jobs", { headers, cache: "no-store" });
    const panel = $("cron-panel");
    if (!response.ok) {
      panel.hidden = true;
      return;
    }
    const jobs = (await response.json()).jobs || [];
    const runs = await Promise.all(
      jobs.slice(0, 20).map((job) =>
        admin(`/admin/v1/cron/jobs/${encodeURIComponent(job.name)}/runs?limit=3`)
          .then((body) => body.runs)
          .catch(() => []),
      ),
    );
    renderCronRows(jobs, runs);
    panel.hidden = false;
  }

  function runLine(run) {
    const when = new Date(run.due_at * 1000).toLocaleString();
    const what = run.error || (run.denied && run.denied.length ? "denied: " + run.denied.join(", ") : run.excerpt || "");
    const line = el("div", "cron-run");
    line.dataset.status = run.status;
    line.append(el("span", "state-" + run.status, run.status), el("span", "muted", ` ${when} `), el("span", "", short(what, 80)));
    return line;
  }

  function renderCronRows(jobs, runs) {
    const table = $("cron-table");
    const body = table.tBodies[0];
    body.replaceChildren();
    if (!jobs.length) body.append(emptyRow(table, "No cron jobs."));
    jobs.forEach((job, index) => {
      const row = el("tr");
      row.dataset.job = job.name;
      const last = el("div");
      const recent = runs[index] || [];
      if (!recent.length) last.textContent = "–";
      for (const run of recent) last.append(runLine(run));
      row.append(
        cell(job.name, "mono"),
        cell(job.source),
        cell(job.enabled ? "enabled" : "paused", "state"),
        cell(`${job.job.schedule} (${job.job.timezone})`, "mono"),
        cell(job.next_fire || "–"),
        cell(last, "detail"),
      );
      body.append(row);
    });
  }

  function dashStatus(text, bad) {
    const status = $("dash-status");
    status.textContent = text;
    status.className = bad ? "dash-status-error" : "muted";
  }

  async function refreshDashboard() {
    const [sessions, audit, stats] = await Promise.allSettled([
      admin("/admin/v1/sessions"),
      admin(`/admin/v1/audit?type=${AUDIT_TYPES}&limit=50`),
      admin("/admin/v1/stats"),
    ]);
    if (sessions.status === "fulfilled") renderSessionRows(sessions.value.sessions);
    if (audit.status === "fulfilled") renderAuditRows(audit.value.audit);
    if (stats.status === "fulfilled") renderStats(stats.value);
    const failed = [sessions, audit, stats].find((r) => r.status === "rejected");
    if (failed) dashStatus(failed.reason.message, true);
    else dashStatus("updated " + new Date().toLocaleTimeString());
    await refreshCron().catch(() => ($("cron-panel").hidden = true));
  }

  async function killSession(sessionId, button) {
    if (!confirm(`Kill session ${sessionId.slice(0, 8)}? Its running turn is interrupted.`)) return;
    button.disabled = true;
    try {
      await admin(`/admin/v1/sessions/${encodeURIComponent(sessionId)}`, { method: "DELETE" });
    } catch (error) {
      dashStatus(error.message, true);
    }
    await refreshDashboard();
  }

  function showTab(name) {
    const dashboard = name === "dashboard";
    $("chat-view").hidden = dashboard;
    $("dashboard-view").hidden = !dashboard;
    $("tab-chat").setAttribute("aria-selected", String(!dashboard));
    $("tab-dashboard").setAttribute("aria-selected", String(dashboard));
    clearInterval(dashboardTimer);
    if (dashboard) {
      refreshDashboard();
      dashboardTimer = setInterval(refreshDashboard, 5000);
    }
    if (location.hash !== "#" + name) history.replaceState(null, "", "#" + name);
  }

  // -- start ------------------------------------------------------------------------------

  function start() {
    $("composer").addEventListener("submit", (event) => {
      event.preventDefault();
      sendPrompt();
    });
    $("prompt").addEventListener("keydown", (event) => {
      if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
        event.preventDefault();
        sendPrompt();
      }
    });
    $("stop").addEventListener("click", interrupt);
    $("new-session").addEventListener("click", newSession);
    $("tab-chat").addEventListener("click", () => showTab("chat"));
    $("tab-dashboard").addEventListener("click", () => showTab("dashboard"));
    $("refresh").addEventListener("click", refreshDashboard);
    $("open-settings").addEventListener("click", () => ($("settings").hidden ? showSettings() : ($("settings").hidden = true)));
    $("close-settings").addEventListener("click", () => ($("settings").hidden = true));
    $("settings-form").addEventListener("submit", saveSettings);
    $("conn").addEventListener("click", () => {
      if (!state.ws) {
        state.retries = 0;
        connect();
      }
    });
    renderSessions();
    selectSession(state.current);
    showTab(location.hash === "#dashboard" ? "dashboard" : "chat");
    loadSetup();
    connect();
  }

  // for tests and the curious: the renderer, and the page's state
  window.HotPlex = { renderMarkdown, escapeHtml, state };
  start();
})();
