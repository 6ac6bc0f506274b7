// socialcare web inbox: a small single-page app on the public HTTP API (no framework, no build step).
// Every value from the API is put on the page with textContent, never as HTML.
"use strict";

// Behind API Gateway the page lives at /<stage>/: relative API paths need the trailing slash.
if (!location.pathname.endsWith("/")) location.replace(location.pathname + "/" + location.search + location.hash);
const BOOT = JSON.parse(document.getElementById("boot").textContent || "{}");
const TOKEN_KEY = "socialcare.token";
const LANG_KEY = "socialcare.lang";
const REFRESH_MS = 15000;

// ---- words --------------------------------------------------------------------------------------
const WORDS = {
  en: {
    language: "Language", sign_out: "Sign out", loading: "Loading…", inbox: "Inbox", supervisor: "Supervisor",
    finance: "Finance", sign_in: "Sign in", username: "User name", password: "Password",
    sign_in_failed: "Sign-in failed", status: "Status", order: "Order", sla: "Service level", any: "Any",
    assignee: "Assignee", me: "Me", nobody: "Unassigned", priority: "Priority", platform: "Channel",
    category: "Category", lang: "Language", tag: "Tag", escalated: "Escalated", apply: "Apply",
    more: "Load more", no_cases: "No cases here.", customer: "Customer", post: "Post", waiting: "Waiting",
    due: "Due", sentiment: "Sentiment", open: "open", pending: "pending", resolved: "resolved", closed: "closed",
    newest: "newest", oldest: "oldest", due_first: "due first", conversation: "Conversation", triage: "Triage",
    why: "Why", reply: "Reply", public: "Public reply", private: "Direct message", send: "Send", check: "Check",
    characters: "characters", template: "Template", none: "None", notes: "Notes", add_note: "Add note",
    set_status: "Set status", history: "History", sent: "sent", queued: "queued", failed: "failed",
    delivery: "Delivery", keyboard: "Keys: j/k move, Enter opens, r replies, g returns to the inbox",
    back: "Back to the inbox", findings: "Brand-voice findings", no_findings: "No findings.",
    override: "Send anyway, because…", waiting_cases: "Waiting for an agent", notifications: "Notifications",
    mark_read: "Mark read", rules: "Triage rules", sources: "Sources", hours: "Team hours", sla_policy: "SLA policy",
    kpis: "KPIs", from: "From", to: "To", group_by: "Group by", show: "Show", download_csv: "Download CSV",
    costs: "Costs", total: "Total", aws: "AWS", platforms: "Platform APIs", per_mention: "Per mention",
    per_case: "Per case", month_to_date: "Month to date", projected: "Projected month", budget: "Budget",
    over_budget: "The projected month passes the budget.", by_day: "By day", by_service: "By service",
    nothing: "Nothing yet.", saved: "Saved.", error: "Something went wrong", team: "Team", version: "Version",
    state: "State", first_response: "First response", resolution: "Resolution", csat: "CSAT", fcr: "FCR",
    opened: "Opened", resolved_n: "Resolved", agent: "Agent", media: "Media", customer_history: "Their cases",
    open_file: "Open", edit: "Tags, priority, category", save: "Save", hand_off: "Hand off", handoff_to: "Agent or team",
    agents: "Agents", presence: "Presence", load: "Load", online: "online", away: "away", offline: "offline",
    review: "Mentions without a case", promote: "Make a case", confirm: "No case needed", urgent: "urgent", high: "high", low: "low",
    normal: "normal",
    fixed_costs: "Fixed costs", month: "month", item: "Item", no_policy: "No SLA policy yet: clocks are not running.",
    assign_to_me: "Claim", note_placeholder: "Only colleagues see notes. @name tells them.",
  },
  ja: {
    language: "言語", sign_out: "サインアウト", loading: "読み込み中…", inbox: "受信箱", supervisor: "管理",
    finance: "費用", sign_in: "サインイン", username: "ユーザー名", password: "パスワード",
    sign_in_failed: "サインインできませんでした", status: "状態", order: "並び順", sla: "サービスレベル", any: "すべて",
    assignee: "担当者", me: "自分", nobody: "未割り当て", priority: "優先度", platform: "チャネル",
    category: "カテゴリ", lang: "言語", tag: "タグ", escalated: "エスカレーション", apply: "適用",
    more: "さらに表示", no_cases: "ケースはありません。", customer: "お客様", post: "投稿", waiting: "待ち時間",
    due: "期限", sentiment: "感情", open: "対応中", pending: "保留", resolved: "解決済み", closed: "完了",
    newest: "新しい順", oldest: "古い順", due_first: "期限順", conversation: "会話", triage: "トリアージ",
    why: "理由", reply: "返信", public: "公開返信", private: "ダイレクトメッセージ", send: "送信", check: "チェック",
    characters: "文字", template: "テンプレート", none: "なし", notes: "メモ", add_note: "メモを追加",
    set_status: "状態を変更", history: "履歴", sent: "送信済み", queued: "送信待ち", failed: "失敗",
    delivery: "配信", keyboard: "キー: j/k で移動、Enter で開く、r で返信、g で受信箱へ",
    back: "受信箱に戻る", findings: "ブランドボイスの指摘", no_findings: "指摘はありません。",
    override: "それでも送信する理由…", waiting_cases: "担当者待ち", notifications: "通知",
    mark_read: "既読にする", rules: "トリアージルール", sources: "取得元", hours: "営業時間", sla_policy: "SLA ポリシー",
    kpis: "KPI", from: "開始", to: "終了", group_by: "集計単位", show: "表示", download_csv: "CSV をダウンロード",
    costs: "費用", total: "合計", aws: "AWS", platforms: "プラットフォーム API", per_mention: "メンションあたり",
    per_case: "ケースあたり", month_to_date: "今月これまで", projected: "今月の見込み", budget: "予算",
    over_budget: "今月の見込みが予算を超えています。", by_day: "日別", by_service: "サービス別",
    nothing: "まだありません。", saved: "保存しました。", error: "エラーが発生しました", team: "チーム", version: "バージョン",
    state: "状態", first_response: "初回応答", resolution: "解決", csat: "顧客満足度", fcr: "一次解決率",
    opened: "作成", resolved_n: "解決", agent: "担当者", media: "メディア", customer_history: "過去のケース",
    open_file: "開く", edit: "タグ・優先度・カテゴリ", save: "保存", hand_off: "引き継ぐ", handoff_to: "担当者またはチーム",
    agents: "担当者", presence: "在席状況", load: "負荷", online: "在席", away: "離席", offline: "オフライン",
    review: "ケース化されていないメンション", promote: "ケースにする", confirm: "ケース不要", urgent: "緊急", high: "高", low: "低",
    normal: "通常",
    fixed_costs: "固定費", month: "月", item: "項目", no_policy: "SLA ポリシーは未設定です（時計は動いていません）。",
    assign_to_me: "担当する", note_placeholder: "メモは同僚だけに表示されます。@名前 で知らせます。",
  },
};

let lang = localStorage.getItem(LANG_KEY) || ((navigator.language || "en").toLowerCase().startsWith("ja") ? "ja" : "en");
function t(key) { return (WORDS[lang] && WORDS[lang][key]) || WORDS.en[key] || key; }

// ---- small DOM helpers ----------------------------------------------------------------------------
function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else if (key === "class") node.className = value;
    else node.setAttribute(key, value === true ? "" : String(value));
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}
function pill(text, cls) { return el("span", { class: "pill " + (cls || "") }, text); }
function toast(message) {
  const box = document.getElementById("toast");
  box.textContent = message;
  box.classList.add("show");
  clearTimeout(toast.timer);
  toast.timer = setTimeout(() => box.classList.remove("show"), 4000);
}
function main() { return document.getElementById("main"); }
// replaceChildren would write a skipped (null) child as the text "null".
function fill(node, ...children) { node.replaceChildren(...children.flat().filter((c) => c !== null && c !== undefined && c !== false)); }
function show(...nodes) { main().replaceChildren(...nodes); }
function when(iso) {
  if (!iso) return "";
  const date = new Date(iso);
  return isNaN(date) ? iso : date.toLocaleString(lang === "ja" ? "ja-JP" : undefined, { dateStyle: "short", timeStyle: "short" });
}
function ago(iso) {
  if (!iso) return "";
  const minutes = Math.max(0, Math.round((Date.now() - new Date(iso).getTime()) / 60000));
  if (minutes < 60) return minutes + (lang === "ja" ? "分" : " min");
  const hours = Math.floor(minutes / 60);
  if (hours < 48) return hours + (lang === "ja" ? "時間" : " h");
  return Math.floor(hours / 24) + (lang === "ja" ? "日" : " d");
}
function money(value) { return value === undefined || value === null ? "–" : "$" + Number(value).toFixed(value < 1 ? 4 : 2); }

// ---- the token and the API ----------------------------------------------------------------------------
function takeTokenFromUrl() {
  // #token=... (make demo) or #id_token=... (a hosted sign-in): kept in this tab's session only.
  const hash = location.hash.startsWith("#") ? location.hash.slice(1) : "";
  if (!hash.includes("token=")) return;
  const params = new URLSearchParams(hash.replace(/^\/?/, ""));
  const token = params.get("token") || params.get("id_token");
  if (token) sessionStorage.setItem(TOKEN_KEY, token);
  history.replaceState(null, "", location.pathname + "#/inbox");
}
function token() { return sessionStorage.getItem(TOKEN_KEY); }

class ApiError extends Error {
  constructor(status, message) { super(message); this.status = status; }
}

async function api(path, options) {
  const opts = options || {};
  const headers = { Authorization: "Bearer " + token() };
  if (opts.body !== undefined) headers["Content-Type"] = "application/json";
  const response = await fetch(path, { method: opts.method || "GET", headers,
    body: opts.body === undefined ? undefined : JSON.stringify(opts.body) });
  if (opts.raw) {
    if (!response.ok) throw new ApiError(response.status, await response.text());
    return response;
  }
  let data = null;
  try { data = await response.json(); } catch (_) { data = null; }
  if (response.status === 401) { sessionStorage.removeItem(TOKEN_KEY); signIn((data && data.error) || ""); throw new ApiError(401, "signed out"); }
  if (!response.ok) throw new ApiError(response.status, (data && (data.error || data.message)) || response.statusText);
  return data;
}

// Which routes this deployment has (GET /openapi.json); a section whose route is missing is not shown.
let routes = null;
async function loadRoutes() {
  routes = new Set();
  try {
    const response = await fetch("openapi.json");
    if (!response.ok) return;
    const spec = await response.json();
    for (const [path, ops] of Object.entries(spec.paths || {})) {
      for (const method of Object.keys(ops)) routes.add(method.toUpperCase() + " " + path);
    }
  } catch (_) { /* without the document, only the core sections show */ }
}
const CORE = new Set(["GET /cases", "GET /cases/{case_id}", "PATCH /cases/{case_id}", "POST /cases/{case_id}/replies", "GET /me"]);
function has(route) { return CORE.has(route) || (routes !== null && routes.has(route)); }

// ---- sign-in ---------------------------------------------------------------------------------------------
function signIn(reason) {
  document.getElementById("nav").replaceChildren();
  document.getElementById("who").textContent = "";
  document.getElementById("sign-out").hidden = true;
  const error = el("p", { class: "err", role: "alert" }, reason || "");
  const user = el("input", { id: "username", autocomplete: "username", required: true });
  const pass = el("input", { id: "password", type: "password", autocomplete: "current-password", required: true });
  const form = el("form", { class: "card signin", "aria-labelledby": "signin-title", onsubmit: async (event) => {
    event.preventDefault();
    const settings = BOOT.signIn || {};
    try {
      const response = await fetch(settings.cognito_endpoint, { method: "POST", headers: {
        "Content-Type": "application/x-amz-json-1.1", "X-Amz-Target": "AWSCognitoIdentityProviderService.InitiateAuth" },
        body: JSON.stringify({ AuthFlow: "USER_PASSWORD_AUTH", ClientId: settings.client_id,
          AuthParameters: { USERNAME: user.value, PASSWORD: pass.value } }) });
      const answer = await response.json();
      const idToken = answer && answer.AuthenticationResult && answer.AuthenticationResult.IdToken;
      if (!idToken) throw new Error(answer.message || answer.__type || t("sign_in_failed"));
      sessionStorage.setItem(TOKEN_KEY, idToken);
      start();
    } catch (err) { error.textContent = t("sign_in_failed") + ": " + err.message; }
  } },
  el("h1", { id: "signin-title" }, t("sign_in")),
  el("label", { for: "username" }, t("username")), user,
  el("label", { for: "password" }, t("password")), pass,
  el("p", {}, el("button", { type: "submit" }, t("sign_in"))), error);
  show(form);
  user.focus();
}

// ---- shell ---------------------------------------------------------------------------------------------------
let me = null;
function sections() {
  const list = [];
  if (me.role !== "finance") list.push(["inbox", t("inbox")]);
  if (me.role === "supervisor") list.push(["supervisor", t("supervisor")]);
  if ((me.role === "supervisor" || me.role === "finance") && has("GET /reports/costs")) list.push(["finance", t("finance")]);
  return list;
}
function drawNav(current) {
  const nav = document.getElementById("nav");
  nav.replaceChildren(...sections().map(([id, label]) =>
    el("a", { href: "#/" + id, "aria-current": id === current ? "page" : false }, label)));
}
function applyWords() {
  document.documentElement.lang = lang;
  for (const node of document.querySelectorAll("[data-t]")) node.textContent = t(node.dataset.t);
  document.getElementById("lang-switch").value = lang;
}

async function start() {
  applyWords();
  if (!token()) return signIn("");
  try {
    me = await api("me");
  } catch (err) {
    if (err.status !== 401) show(el("p", { class: "err", role: "alert" }, t("error") + ": " + err.message));
    return;
  }
  if (routes === null) await loadRoutes();
  document.getElementById("who").textContent = (me.name || me.agent_id) + " · " + me.role;
  document.getElementById("sign-out").hidden = false;
  route();
}

let leaveView = () => {};
// Bumped on every navigation: a view that awaited the API checks it before drawing, so a case reloading after
// "Save" never draws itself over the inbox the agent went to meanwhile.
let viewToken = 0;
function route() {
  if (!me) return;
  viewToken += 1;
  leaveView();
  leaveView = () => {};
  const hash = location.hash.replace(/^#\/?/, "");
  const [section, id] = hash.split("/");
  const allowed = sections().map(([name]) => name);
  const home = allowed[0] || "inbox";
  if (section === "cases" && id && allowed.includes("inbox")) { drawNav("inbox"); return caseView(decodeURIComponent(id)); }
  const target = allowed.includes(section) ? section : home;
  drawNav(target);
  if (target === "supervisor") return supervisorView();
  if (target === "finance") return financeView();
  return inboxView();
}

// ---- inbox -----------------------------------------------------------------------------------------------------
const inboxState = { params: { status: "open", order: "newest" }, selected: 0 };
const FILTERS = [
  ["status", ["open", "pending", "resolved", "closed"], false],
  ["order", ["newest", "oldest", "priority", "due"], false],
  ["sla", ["", "warning", "breached"], false],
  ["assignee", ["", "me", "none"], true],
  ["priority", ["", "urgent", "high", "normal", "low"], true],
  ["platform", ["", "x", "facebook", "instagram", "messenger", "whatsapp"], true],
  ["lang", ["", "en", "ja"], true],
];
function optionLabel(name, value) {
  if (value === "") return t("any");
  if (name === "assignee") return value === "me" ? t("me") : t("nobody");
  if (name === "order" && value === "due") return t("due_first");
  return t(value);
}

async function inboxView() {
  const params = inboxState.params;
  const form = el("form", { class: "filters", "aria-label": t("inbox"), onsubmit: (event) => {
    event.preventDefault();
    const data = new FormData(form);
    inboxState.params = {};
    for (const [key, value] of data.entries()) if (value) inboxState.params[key] = value;
    inboxState.selected = 0;
    inboxView();
  } });
  for (const [name, values, optional] of FILTERS) {
    if (optional && !filterSupported()) continue;
    const select = el("select", { name, id: "f-" + name }, values.map((value) =>
      el("option", { value, selected: (params[name] || "") === value }, optionLabel(name, value))));
    form.append(el("label", { for: "f-" + name }, t(name === "sla" ? "sla" : name), select));
  }
  form.append(el("button", { type: "submit" }, t("apply")));
  const table = el("table", { "aria-label": t("inbox") },
    el("thead", {}, el("tr", {}, [t("priority"), t("platform"), t("sentiment"), t("customer"), t("post"), t("waiting"),
      t("due")].map((h, i) => el("th", { class: i === 2 || i === 6 ? "hide-narrow" : "" }, h)))));
  const body = el("tbody");
  table.append(body);
  const more = el("button", { type: "button", class: "secondary", hidden: true }, t("more"));
  show(el("h1", { class: "sr" }, t("inbox")), form, table, more, el("p", { class: "muted small" }, t("keyboard")));
  let cursor = null;
  let rows = [];
  const seen = new Set();

  async function load(append) {
    const query = new URLSearchParams({ ...params, limit: "25" });
    if (append && cursor) query.set("cursor", cursor);
    let page;
    try { page = await api("cases?" + query); } catch (err) {
      if (err.status !== 401) body.replaceChildren(el("tr", {}, el("td", { colspan: 7, class: "err", role: "alert" }, err.message)));
      return;
    }
    if (!append) { body.replaceChildren(); rows = []; }
    cursor = page.next_cursor;
    more.hidden = !cursor;
    for (const item of page.cases) {
      const row = caseRow(item);
      if (!seen.has(item.case_id) && seen.size) row.classList.add("new");
      seen.add(item.case_id);
      rows.push(row);
      body.append(row);
    }
    if (!rows.length) body.append(el("tr", {}, el("td", { colspan: 7, class: "muted" }, t("no_cases"))));
    select(Math.min(inboxState.selected, Math.max(rows.length - 1, 0)));
  }
  function select(index) {
    rows.forEach((row, i) => row.classList.toggle("sel", i === index));
    inboxState.selected = index;
    if (rows[index] && document.activeElement && document.activeElement.tagName === "TR") rows[index].focus();
  }
  function keys(event) {
    if (["INPUT", "TEXTAREA", "SELECT"].includes(event.target.tagName)) return;
    if (event.key === "j") select(Math.min(inboxState.selected + 1, rows.length - 1));
    else if (event.key === "k") select(Math.max(inboxState.selected - 1, 0));
    else if ((event.key === "Enter" || event.key === "r") && rows[inboxState.selected]) {
      location.hash = "#/cases/" + encodeURIComponent(rows[inboxState.selected].dataset.id) + (event.key === "r" ? "/reply" : "");
    } else return;
    event.preventDefault();
  }
  more.addEventListener("click", () => load(true));
  document.addEventListener("keydown", keys);
  // New cases appear without a reload: the first page is read again while nobody is paging.
  const timer = setInterval(() => { if (!cursor || rows.length <= 25) load(false); }, REFRESH_MS);
  leaveView = () => { clearInterval(timer); document.removeEventListener("keydown", keys); };
  await load(false);
}
function filterSupported() { return routes !== null && routes.size > 0 ? routes.has("GET /cases") : true; }

function caseRow(item) {
  const customer = item.customer || {};
  const sla = item.sla || {};
  const row = el("tr", { class: "case", tabindex: "0", "data-id": item.case_id,
    onclick: () => { location.hash = "#/cases/" + encodeURIComponent(item.case_id); } },
  el("td", {}, pill(t(item.priority || "normal"), "p-" + item.priority), item.escalated ? pill("!", "p-urgent") : null),
  el("td", {}, item.platform),
  el("td", { class: "hide-narrow" }, item.sentiment ? pill(item.sentiment, "s-" + item.sentiment) : ""),
  el("td", {}, customer.name || customer.handle || customer.id || ""),
  el("td", {}, item.excerpt || ""),
  el("td", {}, ago(item.customer_posted_at || item.created_at)),
  el("td", { class: "hide-narrow" }, sla.state ? slaClock(sla) : ""));
  row.addEventListener("keydown", (event) => { if (event.key === "Enter") row.click(); });
  return row;
}
function slaClock(sla) {
  const due = sla.due_at || (sla.next_due && sla.next_due.at);
  const node = pill(sla.state + (due ? " · " + countdown(due) : ""), "sla-" + sla.state);
  if (due) node.dataset.due = due;
  return node;
}
function countdown(iso) {
  const seconds = Math.round((new Date(iso).getTime() - Date.now()) / 1000);
  const sign = seconds < 0 ? "-" : "";
  const abs = Math.abs(seconds);
  const h = Math.floor(abs / 3600), m = Math.floor((abs % 3600) / 60);
  return sign + (h ? h + "h" : "") + m + "m";
}
setInterval(() => { for (const node of document.querySelectorAll("[data-due]")) {
  node.textContent = node.textContent.replace(/ · .*$/, "") + " · " + countdown(node.dataset.due);
} }, 30000);

// ---- one case ----------------------------------------------------------------------------------------------
// X counts a CJK character as two and any link as 23 (its "weighted length"); the others count characters.
function platformLength(text, platform) {
  if (platform !== "x") return [...text].length;
  let count = 0;
  const withoutLinks = text.replace(/https?:\/\/\S+/g, () => { count += 23; return ""; });
  for (const ch of withoutLinks) {
    const code = ch.codePointAt(0);
    const light = (code <= 0x10FF) || (code >= 0x2000 && code <= 0x200D) || (code >= 0x2010 && code <= 0x201F)
      || (code >= 0x2032 && code <= 0x2037);
    count += light ? 1 : 2;
  }
  return count;
}
const LIMITS = { x: 280, facebook: 8000, instagram: 2200, messenger: 2000, whatsapp: 4096 };

function onCasePage(caseId) {
  const [section, id] = location.hash.replace(/^#\/?/, "").split("/");
  try { return section === "cases" && decodeURIComponent(id || "") === caseId; } catch (err) { return false; }
}

async function caseView(caseId) {
  if (!onCasePage(caseId)) return;  // a save finished after the agent left the case: do not draw it back
  const token = viewToken;
  show(el("p", { class: "muted" }, t("loading")));
  let detail;
  try { detail = await api("cases/" + encodeURIComponent(caseId)); } catch (err) {
    if (token !== viewToken) return;
    if (err.status !== 401) show(el("p", { class: "err", role: "alert" }, err.message), el("a", { href: "#/inbox" }, t("back")));
    return;
  }
  if (token !== viewToken) return;  // the agent went elsewhere while the case loaded
  const item = detail.case;
  const left = el("div");
  const right = el("div");
  show(el("p", {}, el("a", { href: "#/inbox" }, "← " + t("back"))),
    el("h1", {}, (item.customer && (item.customer.name || item.customer.handle)) || item.case_id, " ",
      pill(t(item.status), ""), " ", pill(t(item.priority || "normal"), "p-" + item.priority)),
    el("div", { class: "grid" }, left, right));

  // The conversation: the customer's posts, our replies and the notes, in time order.
  const entries = [];
  for (const m of detail.mentions || []) entries.push({ at: m.created_at, kind: "post", m });
  for (const r of detail.replies || []) entries.push({ at: r.created_at || r.requested_at, kind: "reply", r });
  for (const e of detail.history || []) if (e.event === "note_added" || e.type === "note") entries.push({ at: e.at, kind: "note", e });
  entries.sort((a, b) => String(a.at).localeCompare(String(b.at)));
  const conv = el("ol", { class: "conv", "aria-label": t("conversation") }, entries.map(conversationEntry));
  left.append(el("section", { class: "card" }, el("h2", {}, t("conversation")), conv));
  if ((detail.media || []).length) left.append(mediaSection(item, detail.media));
  left.append(replyBox(item, detail));
  if (has("POST /cases/{case_id}/notes")) left.append(noteBox(item));

  right.append(el("section", { class: "card", "aria-label": t("triage") }, el("h2", {}, t("triage")),
    el("div", { class: "kv" }, el("span", { class: "muted" }, t("category")), el("span", {}, item.category || "–"),
      el("span", { class: "muted" }, t("sentiment")), el("span", {}, item.sentiment || "–"),
      el("span", { class: "muted" }, t("tag")), el("span", {}, (item.tags || []).map((tag) => pill(tag))),
      el("span", { class: "muted" }, t("why")), el("span", {}, (item.why || []).join("; ") || "–"),
      el("span", { class: "muted" }, t("sla")), el("span", {}, item.sla && item.sla.state ? slaClock(item.sla) : "–"),
      el("span", { class: "muted" }, t("assignee")), el("span", {}, item.assignee || t("nobody")))));
  right.append(statusBox(item));
  if (has("PATCH /cases/{case_id}")) right.append(editBox(item));
  if (has("POST /cases/{case_id}/assign")) right.append(handOffBox(item));
  right.append(customerPanel(detail));
  const events = (detail.history || []).filter((e) => e.event !== "note_added");
  if (events.length) right.append(el("section", { class: "card" }, el("h2", {}, t("history")),
    el("ul", { class: "small" }, events.slice(-30).map((e) => el("li", {}, when(e.at) + " · " + (e.event || e.type) +
      (e.agent_id ? " · " + e.agent_id : "") + (e.to ? " → " + e.to : ""))))));
  if (location.hash.endsWith("/reply")) { const box = document.getElementById("reply-text"); if (box) box.focus(); }
  const keys = (event) => {
    if (["INPUT", "TEXTAREA", "SELECT"].includes(event.target.tagName)) return;
    if (event.key === "r") { event.preventDefault(); document.getElementById("reply-text").focus(); }
    if (event.key === "g") { event.preventDefault(); location.hash = "#/inbox"; }
  };
  document.addEventListener("keydown", keys);
  leaveView = () => document.removeEventListener("keydown", keys);
}

function conversationEntry(entry) {
  if (entry.kind === "post") {
    const m = entry.m;
    const author = m.author || {};
    return el("li", {}, el("div", { class: "meta" }, (author.name || author.handle || "") + " · " + m.platform + " " +
      (m.kind || "") + " · " + when(m.created_at)), el("div", {}, m.text || ""), mediaList(m.media));
  }
  if (entry.kind === "reply") {
    const r = entry.r;
    const state = deliveryOf(r);
    return el("li", { class: "ours", "data-reply": r.reply_id }, el("div", { class: "meta" }, (r.agent_id || "") + " · " +
      t(r.mode === "private" ? "private" : "public") + " · " + when(entry.at) + " · ", pill(t(state), "st-" + state)),
    el("div", {}, r.text || ""), r.error ? el("div", { class: "err small" }, r.error) : null);
  }
  const e = entry.e;
  return el("li", { class: "note" }, el("div", { class: "meta" }, t("notes") + " · " + (e.agent_id || "") + " · " + when(e.at)),
    el("div", {}, e.text || e.note || ""));
}
function mediaSection(item, media) {
  return el("section", { class: "card" }, el("h2", {}, t("media")), el("ul", { class: "small" }, media.map((m) =>
    el("li", {}, (m.type || "file") + (m.caption ? ": " + m.caption : "") + (m.error ? " (" + m.error + ")" : "") + " ",
      el("button", { type: "button", class: "secondary", onclick: async () => {
        try { const link = await api("cases/" + encodeURIComponent(item.case_id) + "/media/" + encodeURIComponent(m.media_id));
          if (link && link.url) window.open(link.url, "_blank", "noopener"); } catch (err) { toast(err.message); }
      } }, t("open_file"))))));
}
function editBox(item) {
  const tags = el("input", { id: "edit-tags", value: (item.tags || []).join(", "), maxlength: 600 });
  const priority = el("select", { id: "edit-priority" }, ["urgent", "high", "normal", "low"].map((p) =>
    el("option", { value: p, selected: p === item.priority }, t(p))));
  const category = el("input", { id: "edit-category", value: item.category || "", maxlength: 64 });
  return el("form", { class: "card", onsubmit: async (event) => {
    event.preventDefault();
    const body = {};
    const newTags = tags.value.split(",").map((x) => x.trim()).filter(Boolean);
    if (newTags.join(",") !== (item.tags || []).join(",")) body.tags = newTags;
    if (priority.value !== item.priority) body.priority = priority.value;
    if (category.value.trim() && category.value.trim() !== (item.category || "")) body.category = category.value.trim();
    if (!Object.keys(body).length) return;
    try { await api("cases/" + encodeURIComponent(item.case_id), { method: "PATCH", body }); toast(t("saved")); caseView(item.case_id); }
    catch (err) { toast(err.message); }
  } }, el("h2", {}, t("edit")),
  el("label", { for: "edit-tags" }, t("tag")), tags, el("label", { for: "edit-priority" }, t("priority")), priority,
  el("label", { for: "edit-category" }, t("category")), category, el("p", {}, el("button", { type: "submit" }, t("save"))));
}
function handOffBox(item) {
  const to = el("input", { id: "handoff-to", placeholder: t("handoff_to"), maxlength: 128 });
  const kind = el("select", { id: "handoff-kind", "aria-label": t("handoff_to") },
    el("option", { value: "agent_id" }, t("agent")), el("option", { value: "team" }, t("team")));
  const note = el("input", { id: "handoff-note", placeholder: t("notes"), maxlength: 1000, "aria-label": t("notes") });
  return el("form", { class: "card", onsubmit: async (event) => {
    event.preventDefault();
    if (!to.value.trim()) return;
    const body = { [kind.value]: to.value.trim() };
    if (note.value.trim()) body.note = note.value.trim();
    try { await api("cases/" + encodeURIComponent(item.case_id) + "/assign", { method: "POST", body }); toast(t("saved")); caseView(item.case_id); }
    catch (err) { toast(err.message); }
  } }, el("h2", {}, el("label", { for: "handoff-to" }, t("hand_off"))), el("div", { class: "row" }, kind, to), note,
  el("p", {}, el("button", { type: "submit" }, t("hand_off"))));
}
function deliveryOf(reply) { return reply.delivery_status || reply.status || "queued"; }
function mediaList(media) {
  if (!media || !media.length) return null;
  return el("ul", { class: "small", "aria-label": t("media") }, media.map((item) =>
    el("li", {}, (item.type || "file") + (item.caption ? ": " + item.caption : ""))));
}

function replyBox(item, detail) {
  const platform = item.platform;
  const text = el("textarea", { id: "reply-text", "aria-describedby": "reply-count", maxlength: 10000 });
  const count = el("span", { id: "reply-count", class: "count small", "aria-live": "polite" });
  const mode = el("select", { id: "reply-mode", "aria-label": t("reply") },
    el("option", { value: "public" }, t("public")), el("option", { value: "private" }, t("private")));
  if (item.reply_target && item.reply_target.is_dm) { mode.value = "private"; mode.disabled = true; }
  const findings = el("ul", { class: "findings small", "aria-live": "polite" });
  const override = el("input", { id: "override", placeholder: t("override"), hidden: true, maxlength: 500, "aria-label": t("override") });
  const status = el("p", { class: "small", role: "status" });
  function recount() {
    const used = platformLength(text.value, platform);
    const limit = LIMITS[platform] || 2000;
    count.textContent = used + " / " + limit + " " + t("characters");
    count.classList.toggle("over", used > limit);
  }
  text.addEventListener("input", recount);
  recount();
  const controls = el("div", { class: "row" }, mode);
  if (has("GET /templates")) controls.append(templatePicker(item, text, recount));
  if (has("POST /cases/{case_id}/replies/check")) {
    controls.append(el("button", { type: "button", class: "secondary", onclick: async () => {
      try { showFindings(await api("cases/" + encodeURIComponent(item.case_id) + "/replies/check",
        { method: "POST", body: { text: text.value, mode: mode.value } })); } catch (err) { findings.replaceChildren(el("li", { class: "block" }, err.message)); }
    } }, t("check")));
  }
  function showFindings(answer) {
    const list = (answer && answer.findings) || [];
    findings.replaceChildren(...(list.length ? list.map((f) => el("li", { class: f.severity }, f.severity + ": " + (f.message || f.rule)))
      : [el("li", {}, t("no_findings"))]));
    override.hidden = !list.some((f) => f.severity === "block");
  }
  const windowNote = el("p", { class: "small muted", id: "reply-window" });
  if (has("GET /cases/{case_id}/reply-options")) {
    api("cases/" + encodeURIComponent(item.case_id) + "/reply-options").then((answer) => {
      const options = (answer && answer.options) || [];
      fill(windowNote, options.map((o) => el("span", { class: "pill " + (o.allowed ? "st-sent" : "st-failed") },
        (o.how || o.mode) + (o.until ? " → " + when(o.until) : "") + (o.allowed ? "" : " ✕"))));
      windowNote.title = options.map((o) => o.why).filter(Boolean).join("\n");
    }).catch(() => {});
  }
  const send = el("button", { type: "submit" }, t("send"));
  controls.append(send, count);
  const form = el("form", { class: "card", "aria-labelledby": "reply-title", onsubmit: async (event) => {
    event.preventDefault();
    if (!text.value.trim()) return;
    send.disabled = true;
    const body = { text: text.value, mode: mode.value };
    if (!override.hidden && override.value.trim()) body.override_reason = override.value.trim();
    try {
      const answer = await api("cases/" + encodeURIComponent(item.case_id) + "/replies", { method: "POST", body });
      status.textContent = t("delivery") + ": " + t(deliveryOf(answer));
      text.value = ""; recount();
      followReply(item.case_id, answer.reply_id, status);
    } catch (err) {
      status.textContent = err.message;
      if (err.status === 409) override.hidden = false;
    } finally { send.disabled = false; }
  } }, el("h2", { id: "reply-title" }, t("reply")), el("label", { for: "reply-text", class: "sr" }, t("reply")), text, controls,
  findings, override, windowNote, status);
  return form;
}
// The reply goes from queued to sent (or failed) in the background; the page follows it.
async function followReply(caseId, replyId, status) {
  for (let i = 0; i < 40 && replyId; i++) {
    await new Promise((resolve) => setTimeout(resolve, 1500));
    let detail;
    try { detail = await api("cases/" + encodeURIComponent(caseId)); } catch (_) { return; }
    const reply = (detail.replies || []).find((r) => r.reply_id === replyId);
    if (!reply) continue;
    const state = deliveryOf(reply);
    status.textContent = t("delivery") + ": " + t(state);
    status.dataset.state = state;
    if (state === "sent" || state === "failed") {
      if (location.hash.includes(encodeURIComponent(caseId))) caseView(caseId);
      return;
    }
  }
}
function templatePicker(item, text, recount) {
  const select = el("select", { "aria-label": t("template") }, el("option", { value: "" }, t("template") + "…"));
  api("templates?" + new URLSearchParams({ team: item.team, lang: item.lang || lang })).then((answer) => {
    for (const tpl of (answer && answer.templates) || []) select.append(el("option", { value: tpl.template_id }, tpl.name || tpl.template_id));
  }).catch(() => { select.hidden = true; });
  select.addEventListener("change", async () => {
    if (!select.value) return;
    try {
      const answer = await api("cases/" + encodeURIComponent(item.case_id) + "/replies/check",
        { method: "POST", body: { template_id: select.value, mode: "public" } });
      if (answer && answer.rendered) { text.value = answer.rendered; recount(); }
    } catch (err) { toast(err.message); }
  });
  return select;
}
function noteBox(item) {
  const text = el("textarea", { id: "note-text", placeholder: t("note_placeholder"), maxlength: 4000 });
  return el("form", { class: "card", onsubmit: async (event) => {
    event.preventDefault();
    if (!text.value.trim()) return;
    try { await api("cases/" + encodeURIComponent(item.case_id) + "/notes", { method: "POST", body: { text: text.value } });
      toast(t("saved")); caseView(item.case_id); } catch (err) { toast(err.message); }
  } }, el("h2", {}, el("label", { for: "note-text" }, t("notes"))), text, el("button", { type: "submit" }, t("add_note")));
}
function statusBox(item) {
  const select = el("select", { id: "status-select" }, ["open", "pending", "resolved", "closed"].map((s) =>
    el("option", { value: s, selected: s === item.status }, t(s))));
  const box = el("form", { class: "card", onsubmit: async (event) => {
    event.preventDefault();
    try { await api("cases/" + encodeURIComponent(item.case_id), { method: "PATCH", body: { status: select.value } });
      toast(t("saved")); caseView(item.case_id); } catch (err) { toast(err.message); }
  } }, el("h2", {}, el("label", { for: "status-select" }, t("set_status"))), el("div", { class: "row" }, select,
    el("button", { type: "submit" }, t("set_status"))));
  if (!item.assignee && has("POST /cases/{case_id}/claim")) {
    box.append(el("p", {}, el("button", { type: "button", class: "secondary", onclick: async () => {
      try { await api("cases/" + encodeURIComponent(item.case_id) + "/claim", { method: "POST", body: {} }); caseView(item.case_id); }
      catch (err) { toast(err.message); }
    } }, t("assign_to_me"))));
  }
  return box;
}
function customerPanel(detail) {
  const customer = detail.customer || {};
  const panel = el("section", { class: "card", "aria-label": t("customer") }, el("h2", {}, t("customer")),
    el("div", { class: "kv" }, ...Object.entries(customer).filter(([, v]) => typeof v !== "object").slice(0, 8)
      .flatMap(([k, v]) => [el("span", { class: "muted" }, k), el("span", {}, String(v))])));
  if (customer.customer_id && has("GET /customers/{customer_id}")) {
    api("customers/" + encodeURIComponent(customer.customer_id)).then((profile) => {
      const cases = (profile && profile.cases) || [];
      if (cases.length) panel.append(el("h3", {}, t("customer_history")), el("ul", { class: "small" }, cases.slice(0, 10).map((c) =>
        el("li", {}, el("a", { href: "#/cases/" + encodeURIComponent(c.case_id) }, c.case_id), " · " + (c.platform || "") + " · " + t(c.status || "")))));
    }).catch(() => {});
  }
  return panel;
}

// ---- supervisor ---------------------------------------------------------------------------------------------
async function supervisorView() {
  const root = el("div");
  show(el("h1", {}, t("supervisor")), root);
  const card = (title, body) => root.append(el("section", { class: "card" }, el("h2", {}, title), body));
  const teams = me.teams || [];
  const waiting = el("div");
  card(t("waiting_cases"), waiting);
  for (const team of teams) {
    api("teams/" + encodeURIComponent(team) + "/waiting?limit=10").then((page) => {
      const cases = (page && page.cases) || [];
      waiting.append(el("h3", {}, team + " (" + cases.length + (page.next_cursor ? "+" : "") + ")"),
        cases.length ? el("ul", { class: "small" }, cases.map((c) => el("li", {}, el("a", { href: "#/cases/" + encodeURIComponent(c.case_id) },
          (c.customer && (c.customer.name || c.customer.handle)) || c.case_id), " · " + c.platform + " · " + ago(c.created_at))))
          : el("p", { class: "muted small" }, t("nothing")));
    }).catch(() => {});
  }
  if (has("GET /teams/{team}/agents")) {
    const roster = el("div");
    card(t("agents"), roster);
    for (const team of teams) {
      api("teams/" + encodeURIComponent(team) + "/agents").then((answer) => {
        const agents = (answer && answer.agents) || [];
        if (agents.length) roster.append(el("h3", {}, team), table([t("agent"), t("presence"), t("load")],
          agents.map((a) => [a.name || a.agent_id, t(a.presence) || a.presence, a.open_cases + " / " + a.capacity])));
      }).catch(() => {});
    }
  }
  if (has("GET /mentions")) root.append(reviewSection());
  const notes = el("div");
  card(t("notifications"), notes);
  api("notifications?limit=20").then((page) => {
    const list = (page && page.notifications) || [];
    fill(notes, list.length ? el("ul", { class: "small" }, list.map((n) => el("li", {}, when(n.at) + " · " +
      (n.reason || "") + " · " + (n.detail || "") + (n.case_id ? " · " : ""),
    n.case_id ? el("a", { href: "#/cases/" + encodeURIComponent(n.case_id) }, n.case_id) : null))) : el("p", { class: "muted small" }, t("nothing")));
  }).catch(() => {});
  const sources = el("div");
  card(t("sources"), sources);
  api("sources").then((answer) => {
    const list = (answer && answer.sources) || [];
    sources.replaceChildren(table([t("platform"), "id", t("state")], list.map((s) => [s.kind || s.platform, s.source_id,
      s.status || s.state || (s.enabled === false ? "off" : "on")])));
  }).catch(() => {});
  const rules = el("div");
  card(t("rules"), rules);
  api("admin/triage-rules").then((answer) => {
    const doc = (answer && (answer.rules || answer.document)) || answer || {};
    rules.replaceChildren(el("p", { class: "small" }, t("version") + " " + ((answer && answer.version) || "–") + " · " +
      Object.keys(doc).slice(0, 12).join(", ")));
  }).catch(() => {});
  const policy = el("div");
  card(t("sla_policy"), policy);
  api("admin/sla").then((answer) => {
    fill(policy, answer && answer.policy ? el("pre", { class: "small" }, JSON.stringify(answer.policy, null, 1).slice(0, 1500))
      : el("p", { class: "muted small" }, t("no_policy")));
  })
    .catch((err) => policy.replaceChildren(el("p", { class: "muted small" }, err.message)));
  const hours = el("div");
  card(t("hours"), hours);
  for (const team of teams) {
    api("admin/teams/" + encodeURIComponent(team) + "/hours").then((answer) => {
      hours.append(el("p", { class: "small" }, team + ": " + ((answer && answer.calendar && answer.calendar.time_zone) || (answer && answer.time_zone) || "24/7")));
    }).catch(() => hours.append(el("p", { class: "small muted" }, team + ": 24/7")));
  }
  if (has("GET /reports/kpis")) root.append(kpiSection());
}
// A path segment: ":" may stand as it is (mention ids are "platform:id"), and API Gateway and
// `chalice local` then hand the route the same value.
function pathPart(value) { return encodeURIComponent(value).replace(/%3A/gi, ":"); }
// Mentions triage left without a case: a person decides (issue 14's review), and the decision is kept as a label.
function reviewSection() {
  const list = el("div");
  const section = el("section", { class: "card" }, el("h2", {}, t("review")), list);
  api("mentions?" + new URLSearchParams({ case: "false", limit: "10" })).then((answer) => {
    const mentions = (answer && answer.mentions) || [];
    fill(list, mentions.length ? el("ul", { class: "small" }, mentions.map((m) => {
      const row = el("li", {}, (m.platform || "") + " · " + (m.sentiment || (m.triage && m.triage.sentiment) || "") + " · " + (m.text || "").slice(0, 140) + " ");
      const act = (path, label) => el("button", { type: "button", class: "secondary", onclick: async () => {
        try { await api("mentions/" + pathPart(m.mention_id) + "/" + path, { method: "POST", body: {} }); row.remove(); toast(t("saved")); }
        catch (err) { toast(err.message); }
      } }, label);
      if (has("POST /mentions/{mention_id}/promote")) row.append(act("promote", t("promote")), " ");
      if (has("POST /mentions/{mention_id}/confirm")) row.append(act("confirm", t("confirm")));
      return row;
    })) : el("p", { class: "muted small" }, t("nothing")));
  }).catch((err) => fill(list, el("p", { class: "muted small" }, err.message)));
  return section;
}
function table(headers, rows) {
  return el("table", {}, el("thead", {}, el("tr", {}, headers.map((h) => el("th", {}, h)))),
    el("tbody", {}, rows.map((r) => el("tr", {}, r.map((c) => el("td", {}, c === undefined || c === null ? "" : c))))));
}
function isoDay(offset) { const d = new Date(Date.now() + offset * 86400000); return d.toISOString().slice(0, 10); }
function periodForm(onShow, groups) {
  const from = el("input", { type: "date", name: "from", value: isoDay(-6), "aria-label": t("from") });
  const to = el("input", { type: "date", name: "to", value: isoDay(0), "aria-label": t("to") });
  const group = el("select", { name: "group_by", "aria-label": t("group_by") }, groups.map((g) => el("option", { value: g }, g)));
  const form = el("form", { class: "filters", onsubmit: (event) => { event.preventDefault(); onShow(from.value, to.value, group.value); } },
    el("label", {}, t("from"), from), el("label", {}, t("to"), to), el("label", {}, t("group_by"), group),
    el("button", { type: "submit" }, t("show")));
  return form;
}
function kpiSection() {
  const out = el("div");
  const csv = el("button", { type: "button", class: "secondary" }, t("download_csv"));
  let last = null;
  const form = periodForm(async (from, to, groupBy) => {
    last = { from, to, group_by: groupBy };
    try {
      const report = await api("reports/kpis?" + new URLSearchParams(last));
      const rows = report.rows || [];
      out.replaceChildren(barChart(rows.map((r) => [String(r.key), Number(r.cases_opened || 0)]), t("opened")),
        table([t("group_by"), t("opened"), t("resolved_n"), t("first_response"), t("sla"), t("csat"), t("fcr")],
          rows.map((r) => [r.key, r.cases_opened, r.cases_resolved, durationOf(r.first_response), rate(r.sla_met_rate),
            r.csat && r.csat.average !== undefined ? r.csat.average : "–", rate(r.fcr_rate)])));
    } catch (err) { out.replaceChildren(el("p", { class: "err", role: "alert" }, err.message)); }
  }, ["agent", "team", "channel", "category", "day"]);
  csv.addEventListener("click", () => last && download("reports/kpis?" + new URLSearchParams({ ...last, format: "csv" }), "kpis.csv"));
  const section = el("section", { class: "card" }, el("h2", {}, t("kpis")), form, csv, out);
  setTimeout(() => form.requestSubmit(), 0);
  return section;
}
function durationOf(value) {
  if (!value) return "–";
  const seconds = typeof value === "object" ? (value.median_seconds || value.median || value.p50_seconds) : value;
  if (!seconds && seconds !== 0) return "–";
  return seconds < 3600 ? Math.round(seconds / 60) + " min" : (seconds / 3600).toFixed(1) + " h";
}
function rate(value) { return value === undefined || value === null ? "–" : Math.round(value * 100) + "%"; }
async function download(path, name) {
  try {
    const response = await api(path, { raw: true });
    const url = URL.createObjectURL(await response.blob());
    const link = el("a", { href: url, download: name });
    document.body.append(link); link.click(); link.remove();
    setTimeout(() => URL.revokeObjectURL(url), 5000);
  } catch (err) { toast(err.message); }
}
// A bar chart as SVG, with its figures as text too (for screen readers and printing).
function barChart(points, label) {
  const ns = "http://www.w3.org/2000/svg";
  const width = 640, height = 220, pad = 28;
  const max = Math.max(1e-9, ...points.map(([, v]) => v));
  const svg = document.createElementNS(ns, "svg");
  svg.setAttribute("viewBox", `0 0 ${width} ${height}`);
  svg.setAttribute("class", "chart");
  svg.setAttribute("role", "img");
  svg.setAttribute("aria-label", label + ": " + points.map(([k, v]) => k + " " + v).join(", "));
  const step = (width - pad * 2) / Math.max(points.length, 1);
  points.forEach(([key, value], i) => {
    const h = (height - pad * 2) * (value / max);
    const bar = document.createElementNS(ns, "rect");
    bar.setAttribute("x", String(pad + i * step + 2)); bar.setAttribute("y", String(height - pad - h));
    bar.setAttribute("width", String(Math.max(step - 4, 1))); bar.setAttribute("height", String(h));
    bar.setAttribute("fill", "#1f5fbf");
    const tip = document.createElementNS(ns, "title"); tip.textContent = key + ": " + value; bar.append(tip);
    const text = document.createElementNS(ns, "text");
    text.setAttribute("x", String(pad + i * step + step / 2)); text.setAttribute("y", String(height - 8));
    text.setAttribute("font-size", "10"); text.setAttribute("text-anchor", "middle"); text.textContent = String(key).slice(0, 12);
    svg.append(bar, text);
  });
  return svg;
}

// ---- finance -------------------------------------------------------------------------------------------------
async function financeView() {
  const summary = el("div");
  const byDay = el("div");
  const byService = el("div");
  const csv = el("button", { type: "button", class: "secondary" }, t("download_csv"));
  let last = null;
  const form = periodForm(async (from, to) => {
    last = { from, to };
    try {
      const [day, service] = await Promise.all([api("reports/costs?" + new URLSearchParams({ from, to, group_by: "day" })),
        api("reports/costs?" + new URLSearchParams({ from, to, group_by: "service" }))]);
      const budget = day.budget_usd;
      const over = budget && day.projected_month_usd > budget;
      const fixed = (day.fixed_costs || []).filter((f) => f && f.monthly_usd !== undefined);
      fill(summary, el("div", { class: "kv" },
        el("span", { class: "muted" }, t("total")), el("strong", { id: "cost-total" }, money(day.total_usd)),
        el("span", { class: "muted" }, t("aws")), el("span", {}, money(day.aws_usd)),
        el("span", { class: "muted" }, t("platforms")), el("span", {}, money(day.platform_usd)),
        el("span", { class: "muted" }, t("per_mention")), el("span", {}, money(day.per_mention_usd)),
        el("span", { class: "muted" }, t("per_case")), el("span", {}, money(day.per_case_usd)),
        el("span", { class: "muted" }, t("month_to_date")), el("span", {}, money(day.month_to_date_usd)),
        el("span", { class: "muted" }, t("projected")), el("span", {}, money(day.projected_month_usd)),
        budget ? el("span", { class: "muted" }, t("budget")) : null, budget ? el("span", {}, money(budget)) : null),
      over ? el("p", { class: "err", role: "alert" }, t("over_budget") + (day.budget_warning ? " " + day.budget_warning : "")) : null,
      fixed.length ? el("details", {}, el("summary", {}, t("fixed_costs") + ": " + money(fixed.reduce((sum, f) => sum + Number(f.monthly_usd || 0), 0)) + " / " + t("month")),
        table([t("item"), "USD / " + t("month")], fixed.map((f) => [f.label, money(f.monthly_usd)]))) : null);
      byDay.replaceChildren(el("h3", {}, t("by_day")), barChart((day.rows || []).map((r) => [r.key, r.cost_usd]), t("by_day")));
      byService.replaceChildren(el("h3", {}, t("by_service")), barChart((service.rows || []).map((r) => [r.key, r.cost_usd]), t("by_service")),
        table([t("by_service"), "USD"], (service.rows || []).map((r) => [r.key, money(r.cost_usd)])));
    } catch (err) { summary.replaceChildren(el("p", { class: "err", role: "alert" }, err.message)); }
  }, ["day"]);
  csv.addEventListener("click", () => last && download("reports/costs?" + new URLSearchParams({ ...last, group_by: "day", format: "csv" }), "costs.csv"));
  show(el("h1", {}, t("costs")), el("section", { class: "card" }, form, csv, summary, byDay, byService));
  form.requestSubmit();
}

// ---- start ------------------------------------------------------------------------------------------------------
document.getElementById("lang-switch").addEventListener("change", (event) => {
  lang = event.target.value;
  localStorage.setItem(LANG_KEY, lang);
  applyWords();
  if (me) { drawNav(); route(); } else signIn("");
});
document.getElementById("sign-out").addEventListener("click", () => {
  sessionStorage.removeItem(TOKEN_KEY);
  me = null;
  signIn("");
});
window.addEventListener("hashchange", route);
takeTokenFromUrl();
start();
